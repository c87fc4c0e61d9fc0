"""The S3 front end: a FastAPI app over core.fs (see protocols/s3/app.py)."""
