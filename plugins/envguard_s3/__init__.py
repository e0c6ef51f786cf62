"""envguard's S3 integration (extra ``s3``): object tags, a cross-environment access guard
through botocore's event system, and bucket policy generation.

This module stays light: boto3 is imported only inside the functions that use it.
"""
