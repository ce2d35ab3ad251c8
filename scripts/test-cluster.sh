#!/usr/bin/env bash
# `make test-cluster`: the cluster suite (tests/cluster): a primary and a
# streaming replica, Redis, two transitd instances and HAProxy, started by
# scripts/cluster.sh on their own ports under .run/test-cluster and stopped
# afterwards. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --cluster
make -s all
export CLUSTER_DIR=${CLUSTER_DIR:-$PWD/.run/test-cluster}
export CLUSTER_PORT_BASE=${CLUSTER_PORT_BASE:-15480}
echo "== cluster tests"
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/cluster "$@"
