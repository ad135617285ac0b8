"""A kubeconfig's exec credential plugin (client.authentication.k8s.io), as kubectl runs it: for people's own
kubeconfigs, whose managed clusters (EKS, GKE, AKS, OIDC logins) hand out tokens through a command.

Only a token is taken from the plugin's ExecCredential: a plugin that answers with a client certificate is
refused with a clear error. Pods never use this: they read their service account.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLUGIN_TIMEOUT_S = 120.0  # an interactive login (a browser, a device code) takes a person's while


class ExecError(Exception):
    """The plugin could not be run, failed, or answered with no token."""


@dataclass(frozen=True)
class ExecPlugin:
    """The `exec` entry of a kubeconfig user: the command, its arguments and environment."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = "client.authentication.k8s.io/v1"
    interactive_mode: str = "IfAvailable"  # Never | IfAvailable | Always
    base: Path = Path()  # a relative command (with a slash) is relative to the kubeconfig's directory

    @classmethod
    def from_kubeconfig(cls, body: Mapping[str, Any], base: Path) -> ExecPlugin:
        """From a user's `exec` mapping; ExecError if it names no command."""
        if not body.get("command"):
            raise ExecError("the exec entry names no command")
        env = tuple((str(e["name"]), str(e.get("value", ""))) for e in body.get("env") or [] if e.get("name"))
        return cls(str(body["command"]), tuple(str(a) for a in body.get("args") or []), env,
                   str(body.get("apiVersion") or cls.api_version), str(body.get("interactiveMode") or "IfAvailable"),
                   base)

    def run(self) -> tuple[str, dt.datetime | None]:
        """The token the plugin hands out, and when it expires (None: until the server refuses it)."""
        interactive = self.interactive_mode != "Never" and sys.stdin is not None and sys.stdin.isatty()
        if self.interactive_mode == "Always" and not interactive:
            raise ExecError(f"the credential plugin {self.command} needs a terminal to log in")
        info = {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": {"interactive": interactive}}
        env = {**os.environ, **dict(self.env), "KUBERNETES_EXEC_INFO": json.dumps(info)}
        try:
            # stderr goes to the person (a plugin prints its login prompts there), stdout is the answer.
            done = subprocess.run([self._executable(), *self.args], env=env, stdout=subprocess.PIPE,
                                  stdin=None if interactive else subprocess.DEVNULL, timeout=PLUGIN_TIMEOUT_S,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ExecError(f"cannot run the credential plugin {self.command}: {exc}") from exc
        if done.returncode != 0:
            raise ExecError(f"the credential plugin {self.command} failed (exit status {done.returncode})")
        return parse_credential(done.stdout, self.command)

    def _executable(self) -> str:
        if "/" in self.command and not Path(self.command).is_absolute():
            return str(self.base / self.command)
        return shutil.which(self.command) or self.command


def parse_credential(output: bytes, command: str = "the plugin") -> tuple[str, dt.datetime | None]:
    """The token and expiry in an ExecCredential's status; ExecError when there is no token."""
    try:
        status = json.loads(output).get("status") or {}
    except (ValueError, AttributeError) as exc:
        raise ExecError(f"the credential plugin {command} did not answer with an ExecCredential") from exc
    token = status.get("token")
    if not token:
        what = "a client certificate, which this client does not take" if status.get("clientCertificateData") \
            else "no token"
        raise ExecError(f"the credential plugin {command} answered with {what}")
    expiry = status.get("expirationTimestamp")
    try:
        return str(token), dt.datetime.fromisoformat(expiry.replace("Z", "+00:00")) if expiry else None
    except (AttributeError, ValueError) as exc:
        raise ExecError(f"the credential plugin {command} gave an unreadable expirationTimestamp") from exc
