"""Email through SES (the ``email`` transport): plain text, from the operator's verified sender."""

from __future__ import annotations

from typing import TYPE_CHECKING

from geoexport.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_ses import SESClient

_TRANSIENT = {"Throttling", "ThrottlingException", "ServiceUnavailable", "InternalFailure"}


class SesMailer:
    def __init__(self, ses_client: SESClient, sender: str) -> None:
        self._ses = ses_client
        self._sender = sender

    def send(self, recipients: list[str], subject: str, body: str) -> str:
        """The SES message id; a refusal (unverified sender, sandboxed recipient) is the reason."""
        from botocore.exceptions import BotoCoreError, ClientError

        from geoexport.tasks.transports import TransportFailed

        try:
            answer = self._ses.send_email(
                Source=self._sender,
                Destination={"ToAddresses": recipients},
                Message={
                    "Subject": {"Data": subject, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": body, "Charset": "UTF-8"}},
                },
            )
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _TRANSIENT:
                raise TransientError(f"SES answered {code}") from error
            message = error.response.get("Error", {}).get("Message", "")
            raise TransportFailed(f"SES refused the message: {code} {message}".strip()) from error
        except BotoCoreError as error:
            raise TransientError(f"SES: {error}") from error
        return str(answer["MessageId"])
