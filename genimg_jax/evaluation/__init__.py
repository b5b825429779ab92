"""Measuring what was generated: feature spaces, FID/KID/precision–recall, VAE likelihoods."""
