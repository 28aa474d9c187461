"""Durable shared storage for AWS Lambda on Amazon S3 Files (an S3 bucket mounted over NFS).

One concept per module, imported directly so a cold start pays only for what it uses::

    from s3files_store.config import get_config
    from s3files_store.documents import write_document
"""
