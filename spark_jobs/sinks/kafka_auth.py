"""Kafka client options with the login added from the environment: secrets never sit in files.

``kafka.options`` in YAML carries only non-secret librdkafka settings (``security.protocol``,
``sasl.mechanism``, ``ssl.ca.location``). The SASL/SCRAM login is added at job start, on the
driver, from (first match wins):

1. ``DREDGE_KAFKA_SECRET_ID``: an AWS Secrets Manager secret id/ARN whose value is the JSON
   ``{"username": ..., "password": ...}`` - the format MSK uses for SCRAM secrets
   (``AmazonMSK_*``). Read with the default credential chain (EMR: the job role).
2. ``DREDGE_KAFKA_SASL_USERNAME`` + ``DREDGE_KAFKA_SASL_PASSWORD`` (Databricks: set them in the
   job cluster's ``spark_env_vars`` as ``{{secrets/<scope>/<key>}}`` references).

The resolved dict travels to the producer tasks inside the ``foreachBatch`` closure (memory,
never a file or a command line).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping

ENV_SECRET_ID = "DREDGE_KAFKA_SECRET_ID"
ENV_USERNAME = "DREDGE_KAFKA_SASL_USERNAME"
ENV_PASSWORD = "DREDGE_KAFKA_SASL_PASSWORD"
# librdkafka properties that hold secrets: refused when they come from a config file
SECRET_KEYS = frozenset(
    {
        "sasl.password",
        "sasl.username",
        "sasl.oauthbearer.client.secret",
        "ssl.key.password",
        "ssl.keystore.password",
        "ssl.key.pem",
    }
)
FetchSecret = Callable[[str], str]


class KafkaSecretError(ValueError):
    """A secret is in the config file, or the configured secret source is incomplete."""


def fetch_secret_string(secret_id: str) -> str:
    """The ``SecretString`` of an AWS Secrets Manager secret (default credential chain)."""
    import boto3

    region = None
    if secret_id.startswith("arn:"):
        region = secret_id.split(":")[3]  # arn:aws:secretsmanager:<region>:<acct>:secret:<name>
    client = boto3.client("secretsmanager", region_name=region)
    return str(client.get_secret_value(SecretId=secret_id)["SecretString"])


def _login_from_secret(secret_id: str, fetch: FetchSecret) -> dict[str, str]:
    try:
        doc = json.loads(fetch(secret_id))
        return {"sasl.username": str(doc["username"]), "sasl.password": str(doc["password"])}
    except (ValueError, KeyError, TypeError) as err:
        raise KafkaSecretError(
            f"{ENV_SECRET_ID}={secret_id}: expected a JSON secret with username and password"
        ) from err


def kafka_client_options(
    options: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    fetch: FetchSecret = fetch_secret_string,
) -> dict[str, str]:
    """``options`` (from the config file) plus the SASL login from the environment.

    Args:
        options: librdkafka properties from ``kafka.options``; must hold no secret.
        environ: where to look for the variables (default ``os.environ``).
        fetch: reads a Secrets Manager secret string (replaceable in tests).

    Raises:
        KafkaSecretError: a secret key is in ``options``, or only one of username/password is
            set, or the Secrets Manager value is not ``{"username", "password"}`` JSON.
    """
    env = os.environ if environ is None else environ
    leaked = sorted(k for k in options if k.lower() in SECRET_KEYS)
    if leaked:
        raise KafkaSecretError(
            f"kafka.options.{leaked[0]}: secrets must not be in config files; set "
            f"{ENV_SECRET_ID} (Secrets Manager) or {ENV_USERNAME}/{ENV_PASSWORD}"
        )
    out = dict(options)
    if env.get(ENV_SECRET_ID):
        out.update(_login_from_secret(env[ENV_SECRET_ID], fetch))
    elif env.get(ENV_USERNAME) or env.get(ENV_PASSWORD):
        if not (env.get(ENV_USERNAME) and env.get(ENV_PASSWORD)):
            raise KafkaSecretError(f"set both {ENV_USERNAME} and {ENV_PASSWORD}, or neither")
        out["sasl.username"] = env[ENV_USERNAME]
        out["sasl.password"] = env[ENV_PASSWORD]
    return out
