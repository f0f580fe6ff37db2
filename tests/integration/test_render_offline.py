"""Rendering never reaches the user's cluster: ``kubectl kustomize`` opens a connection to the
current kubeconfig's API server, so kubegate hands it a kubeconfig of its own.

The "cluster" here is a plain TCP listener on 127.0.0.1 that counts connections (no Kubernetes
API server can run here; none is needed to prove that nothing connects).
"""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

import pytest

from tests.conftest import RunCli

KUSTOMIZATION = "resources: [pod.yaml]\n"
POD = """apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers: [{name: web, image: "nginx:1.25"}]
"""


@pytest.mark.skipif(shutil.which("kustomize") is not None, reason="kubectl is not the renderer")
def test_kubectl_kustomize_does_not_contact_the_users_cluster(
    run_cli: RunCli, tmp_path: Path
) -> None:
    connections: list[tuple[str, int]] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, peer = listener.accept()
                except TimeoutError:
                    continue
                connections.append(peer)
                conn.close()

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n"
            f"  cluster: {{server: 'http://127.0.0.1:{port}'}}\n"
            "users:\n- name: admin\n  user: {token: secret-token}\n"
            "contexts:\n- name: prod\n  context: {cluster: prod, user: admin}\n"
            "current-context: prod\n"
        )
        source = tmp_path / "src"
        source.mkdir()
        (source / "kustomization.yaml").write_text(KUSTOMIZATION)
        (source / "pod.yaml").write_text(POD)
        result = run_cli("images", str(source), env={"KUBECONFIG": str(kubeconfig)})
        stop.set()
        thread.join(timeout=5)
    assert result.returncode == 0, result.stderr
    assert "docker.io/library/nginx:1.25" in result.stdout
    assert connections == []
