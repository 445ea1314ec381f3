"""The export state machine's steps: Clip -> Package -> Upload -> Notify (and MarkFailed).

Steps pass S3 references and small JSON, never pixels, and each can be re-run without harm.
"""
