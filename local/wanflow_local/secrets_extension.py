"""The AWS Parameters and Secrets Lambda Extension, served locally over moto's Secrets Manager.

On Lambda the extension is a layer: a companion process that answers
`GET /secretsmanager/get?secretId=…` on localhost (port 2773 unless
PARAMETERS_SECRETS_EXTENSION_HTTP_PORT says otherwise) for callers that send the function's
session token in `X-Aws-Parameters-Secrets-Token`, and answers with what GetSecretValue returns.
moto does not run Lambda layers, so the local stack serves the same HTTP contract on loopback,
reading from moto, and points the handlers at it: the code path that a deployed function takes
(wanflow.secret_cache) is the one the local stack and the tests run.

As on Lambda, the extension reads a secret with the credentials of the function that asks: the
token it sends is its role's session token, whose session this serves the read with, so moto's
IAM refuses a secret the function's role may not read. (A fixed `session_token` with the client
given is accepted too, for an extension serving callers that are no deployed function.)
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qs, urlsplit

import boto3

from wanflow_local.iam import session_of

if TYPE_CHECKING:
    from types import TracebackType

    from mypy_boto3_secretsmanager import SecretsManagerClient

logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"


class SecretsExtension:
    """The extension's secrets endpoint on 127.0.0.1; `port` once started."""

    def __init__(self, client: SecretsManagerClient, *, session_token: str | None = None) -> None:
        self.client = client
        #: What callers must send: Lambda's AWS_SESSION_TOKEN of the function.
        self.session_token = session_token or f"local-session-{secrets.token_hex(16)}"
        self.requests = 0
        self._server: ThreadingHTTPServer | None = None
        self._sessions: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        """The port it listens on."""
        if self._server is None:
            raise RuntimeError("the secrets extension is not started")
        return int(self._server.server_address[1])

    def environ(self) -> dict[str, str]:
        """What a function's environment holds on Lambda for it to reach the extension."""
        return {
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(self.port),
            "AWS_SESSION_TOKEN": self.session_token,
        }

    def start(self) -> Self:
        """Listen on a free loopback port, in a daemon thread."""
        extension = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                extension.requests += 1
                status, body = extension.answer(self.path, self.headers.get(TOKEN_HEADER))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("secrets extension: " + format, *args)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def answer(self, path: str, token: str | None) -> tuple[int, dict[str, Any]]:
        """The status and JSON body the extension gives for one request."""
        client = self._client_for(token)
        if client is None:
            return 401, {"message": f"missing or wrong {TOKEN_HEADER} header"}
        url = urlsplit(path)
        if url.path != "/secretsmanager/get":
            return 404, {"message": f"no route {url.path}"}
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        secret_id = query.get("secretId")
        if not secret_id:
            return 400, {"message": "secretId is required"}
        arguments = {"SecretId": secret_id}
        if "versionId" in query:
            arguments["VersionId"] = query["versionId"]
        if "versionStage" in query:
            arguments["VersionStage"] = query["versionStage"]
        try:
            value = client.get_secret_value(**arguments)
        except client.exceptions.ResourceNotFoundException as exc:
            return 400, {"message": str(exc)}
        except client.exceptions.ClientError as exc:  # AccessDenied: the role may not read it
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
            return status, {"message": str(exc)}
        return 200, {
            name: (item.isoformat() if isinstance(item, datetime) else item)
            for name, item in value.items()
            if name != "ResponseMetadata"
        }

    def _client_for(self, token: str | None) -> Any:
        """The Secrets Manager client to answer a caller with: the given one for the fixed
        token, else one signing with the moto STS session whose token it is (None: no such
        session)."""
        if token is None:
            return None
        if token == self.session_token:
            return self.client
        # One client per session, built under the lock: a burst of first reads of one
        # function would otherwise build dozens at once (boto3 builds them slowly, and not
        # safely from one session), and the callers' reads time out.
        with self._lock:
            if token not in self._sessions:
                role = session_of(token)
                if role is None:
                    return None
                session = boto3.Session(
                    aws_access_key_id=role.access_key_id,
                    aws_secret_access_key=role.secret_access_key,
                    aws_session_token=role.session_token,
                    region_name=self.client.meta.region_name,
                )
                self._sessions[token] = session.client(
                    "secretsmanager", endpoint_url=self.client.meta.endpoint_url
                )
            return self._sessions[token]

    def prepare(self, token: str) -> None:
        """Start serving the function whose session token this is, as the extension starts
        in the function's Init on Lambda (its client is built then, not on the first read)."""
        self._client_for(token)

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
