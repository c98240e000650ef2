"""A teammate on another host, for real: two hosts made of network namespaces joined by a veth pair.

Host B serves the DVC remote over SSH (Debian's openssh-server, key-only login with a key this test makes) and the
project's MLflow server; host A runs the tiny pipeline logging into B's server, `dvc push`es over SSH, and a fresh
clone on A (empty cache) `dvc pull`s: `dvc status` is clean and `dvc repro` runs nothing; the runs are read back
from B's server. B's host key is pinned (a known_hosts file in A's home), so A talks to B and nobody else.

Needs root (namespaces, sshd); skipped, saying why, where the machine forbids them. `.ci/run` installs
openssh-server and iproute2 when missing; dvc-ssh is in requirements.lock. Everything started is stopped by PID
and the namespaces are removed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from helpers import REPO, TINY_OVERRIDES, copy_repo, run, tool_env

pytestmark = [pytest.mark.dvc, pytest.mark.server, pytest.mark.xdist_group("teammate")]

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SUBNET = "10.213.77"   # private addresses of this test's own: A is .1, B is .2
A_ADDR, B_ADDR, PORT = f"{SUBNET}.1", f"{SUBNET}.2", 5001


def sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def why_not() -> str | None:
    """Why this machine cannot host the test, or None."""
    if os.geteuid() != 0:
        return "needs root for network namespaces and sshd"
    if not shutil.which("ip"):
        return "needs iproute2 (ip netns); .ci/run installs it"
    if not os.path.exists(SSHD):
        return "needs Debian's openssh-server (sshd); .ci/run installs it"
    probe = f"cnnp-probe-{uuid.uuid4().hex[:6]}"
    made = sh("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"this machine forbids network namespaces (`ip netns add` said: {made.stderr.strip()})"
    sh("ip", "netns", "del", probe, check=False)
    if importlib.util.find_spec("dvc_ssh") is None:
        return "needs dvc-ssh (requirements.lock)"
    return None


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    """Namespaces A and B joined by a veth pair; sshd and the MLflow server on B. Yields a dict of what the tests
    need; removes everything afterwards."""
    reason = why_not()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("teammate")
    tag = uuid.uuid4().hex[:6]
    a, b = f"cnnp-a-{tag}", f"cnnp-b-{tag}"
    started: list[int] = []
    mlflow_dir = root / "b-mlflow"
    try:
        for ns in (a, b):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", f"va{tag}", "type", "veth", "peer", "name", f"vb{tag}")
        for ns, dev, addr in ((a, f"va{tag}", A_ADDR), (b, f"vb{tag}", B_ADDR)):
            sh("ip", "link", "set", dev, "netns", ns)
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")

        # B: sshd, key-only, on B's address; the keys and config live under the test's tmp folder, so StrictModes
        # must be off (sshd would refuse keys in a world-writable tree).
        keys = root / "keys"
        keys.mkdir()
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "host"), "-C", "B host key")
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "user"), "-C", "A's user key")
        (keys / "authorized_keys").write_text((keys / "user.pub").read_text())
        config = keys / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {B_ADDR}", "Port 22", f"HostKey {keys / 'host'}",
            f"AuthorizedKeysFile {keys / 'authorized_keys'}",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no", f"PidFile {keys / 'sshd.pid'}",
            "Subsystem sftp internal-sftp", ""]))
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        sshd = subprocess.Popen(["ip", "netns", "exec", b, SSHD, "-D", "-e", "-f", str(config)],
                                stdout=subprocess.DEVNULL, stderr=open(root / "sshd.log", "w"))
        started.append(sshd.pid)
        listening(a, B_ADDR, 22, sshd, root / "sshd.log")  # before anything connects: no race with its start-up

        # B: the project's MLflow server, on B's address, answering to that name.
        server = sh("ip", "netns", "exec", b, "bash", str(REPO / "tools" / "mlflow_server.sh"), "start",
                    "--host", B_ADDR, "--port", str(PORT), "--dir", str(mlflow_dir), "--workers", "1",
                    "--timeout", "150", "--allowed-hosts", f"{B_ADDR}:{PORT},{B_ADDR}", env=tool_env(), timeout=240)
        assert server.stdout.strip() == f"export MLFLOW_TRACKING_URI=http://{B_ADDR}:{PORT}", server.stderr

        # A's home: B's host key pinned (see pin_host_key).
        home = root / "a-home"
        pin_host_key(home, " ".join((keys / "host.pub").read_text().split()[:2]), keys / "user")
        yield {"a": a, "b": b, "root": root, "keys": keys, "home": home, "uri": f"http://{B_ADDR}:{PORT}",
               "remote": f"ssh://root@{B_ADDR}{root / 'b-remote'}"}
    finally:
        if (mlflow_dir / "mlflow-server.pid").exists():
            sh("ip", "netns", "exec", b, "bash", str(REPO / "tools" / "mlflow_server.sh"), "stop", "--dir",
               str(mlflow_dir), check=False, env=tool_env())
        for pid in started:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for ns in (a, b):
            sh("ip", "netns", "del", ns, check=False)


def listening(ns: str, addr: str, port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Wait until `addr:port` accepts a TCP connection from namespace `ns`; fail with `proc`'s log if it died."""
    probe = f"import socket; socket.create_connection(({addr!r}, {port}), timeout=2).close()"
    deadline = time.monotonic() + timeout
    while sh("ip", "netns", "exec", ns, sys.executable, "-c", probe, check=False).returncode != 0:
        assert proc.poll() is None, f"sshd exited ({proc.returncode}):\n{log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"nothing listens on {addr}:{port} after {timeout:.0f} s"
        time.sleep(0.2)


def pin_host_key(home: Path, host_key: str, keyfile: Path) -> None:
    """A's ~/.ssh: B's host key in known_hosts, and B reached through OpenSSH, which checks it strictly.

    dvc-ssh checks no host key: sshfs passes known_hosts=None to asyncssh and DVC's ssh remote has no setting for
    it. asyncssh does follow ~/.ssh/config's ProxyCommand, so the connection to B is carried by `ssh -W`, which
    refuses a host key other than the pinned one (-F none: the inner ssh must not apply this config again)."""
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    (home / ".ssh" / "known_hosts").write_text(f"{B_ADDR} {host_key}\n")
    (home / ".ssh" / "config").write_text(
        f"Host {B_ADDR}\n"
        f"    ProxyCommand ssh -F none -o BatchMode=yes -o StrictHostKeyChecking=yes "
        f"-o UserKnownHostsFile={home / '.ssh' / 'known_hosts'} -i {keyfile} -W %h:%p %r@%h\n")


def on_a(hosts: dict, cmd: list[str], cwd: Path, check: bool = True, **extra: str) -> subprocess.CompletedProcess:
    """Run `cmd` on host A: in its namespace, with its home (the pinned host key) and B's tracking server."""
    env = tool_env(HOME=str(hosts["home"]), MLFLOW_TRACKING_URI=hosts["uri"], **extra)
    return run(["ip", "netns", "exec", hosts["a"], *cmd], cwd, env=env, check=check)


def test_a_teammate_pushes_over_ssh_and_a_fresh_clone_pulls_and_runs_nothing(hosts, tiny_source, tmp_path):
    repo = copy_repo(tmp_path / "a-repo", {
        **TINY_OVERRIDES, "data": {**TINY_OVERRIDES["data"], "source": str(tiny_source)},
        "train": {**TINY_OVERRIDES["train"], "optimizers": ["sgd"]}, "prune": {"methods": ["magnitude"]},
        "sweep": {**TINY_OVERRIDES["sweep"], "methods": ["magnitude"], "ratios": [0.5]},
        "study": {"methods": ["magnitude"], "ratios": [0.5], "seeds": [0]}})
    # The README's commands for a real second machine, with this test's key and the remote on B.
    run(["dvc", "remote", "add", "-d", "teammate", hosts["remote"]], repo)
    run(["dvc", "remote", "modify", "--local", "teammate", "keyfile", str(hosts["keys"] / "user")], repo)
    on_a(hosts, ["dvc", "repro"], repo)
    pushed = on_a(hosts, ["dvc", "push"], repo)
    assert "pushed" in pushed.stdout.lower(), pushed.stdout
    assert any((hosts["root"] / "b-remote").rglob("*")), "nothing arrived on B"
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "results"], repo)

    clone = tmp_path / "a-clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    run(["dvc", "remote", "modify", "--local", "teammate", "keyfile", str(hosts["keys"] / "user")], clone)
    assert not (clone / ".dvc" / "cache").exists()
    on_a(hosts, ["dvc", "pull"], clone)
    assert (clone / "models" / "base" / "sgd.pt").read_bytes() == (repo / "models" / "base" / "sgd.pt").read_bytes()
    status = on_a(hosts, ["dvc", "status"], clone)
    assert "up to date" in status.stdout, status.stdout
    again = on_a(hosts, ["dvc", "repro"], clone)
    assert "Running stage" not in again.stdout, again.stdout

    # The runs, read back from B's server by a client on A.
    query = ("import json, sys, urllib.request as u; base = sys.argv[1] + '/api/2.0/mlflow/';"
             "e = json.load(u.urlopen(base + 'experiments/get-by-name?experiment_name=resnet20-cifar10'));"
             "req = u.Request(base + 'runs/search', data=json.dumps({'experiment_ids': [e['experiment']"
             "['experiment_id']], 'max_results': 1000}).encode(), headers={'Content-Type': 'application/json'});"
             "print(json.dumps([[r['info']['run_name'], r['info']['status']] for r in json.load(u.urlopen(req))"
             ".get('runs', [])]))")
    runs = json.loads(on_a(hosts, [sys.executable, "-c", query, hosts["uri"]], clone).stdout)
    names = {name for name, status in runs}
    assert {"download", "train-sgd", "finetune-magnitude@0.5", "evaluate-magnitude@0.5", "report", "study"} <= names
    assert {status for _, status in runs} == {"FINISHED"}, runs


def test_a_host_key_other_than_the_pinned_one_is_refused(hosts, tmp_path):
    """The pin is what protects a push: with another key pinned for B, dvc cannot reach B's remote."""
    home = tmp_path / "home"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "impostor"))
    pin_host_key(home, " ".join((tmp_path / "impostor.pub").read_text().split()[:2]), hosts["keys"] / "user")
    repo = copy_repo(tmp_path / "repo")
    run(["dvc", "remote", "add", "-d", "teammate", hosts["remote"] + "-impostor-check"], repo)
    run(["dvc", "remote", "modify", "--local", "teammate", "keyfile", str(hosts["keys"] / "user")], repo)
    (repo / "note.txt").write_text("nothing secret\n")
    run(["dvc", "add", "note.txt"], repo)
    env = tool_env(HOME=str(home))
    pushed = run(["ip", "netns", "exec", hosts["a"], "dvc", "push"], repo, env=env, check=False)
    assert pushed.returncode != 0, pushed.stdout
    # Refused for the key, by the pinning ssh (B's sshd is up: the fixture waited for it), not for a closed port:
    # dvc does not pass ssh's words on, so the same connection is made here with ssh itself.
    probe = sh("ip", "netns", "exec", hosts["a"], "ssh", "-F", str(home / ".ssh" / "config"), "-o", "BatchMode=yes",
               "-i", str(hosts["keys"] / "user"), f"root@{B_ADDR}", "true", check=False, env=env, timeout=60)
    assert probe.returncode != 0 and "Host key verification failed" in probe.stderr, probe.stderr
    assert not (hosts["root"] / "b-remote-impostor-check").exists()
