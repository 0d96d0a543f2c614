"""Where output files go and where input files come from: webhooks, S3, GCS, local."""
