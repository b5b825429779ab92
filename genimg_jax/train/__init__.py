"""Training: state pytrees, pure update steps, the compiled multi-step dispatch, the host loop."""
