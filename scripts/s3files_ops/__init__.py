"""Post-deploy verification and preflight checks for the S3 Files Lambda stack (see scripts/verify.py)."""
