"""A real Kubernetes control plane (etcd and kube-apiserver as local processes), the way
controller-runtime's envtest runs one: for the integration tests and for ``barrack-operator
dev-cluster``. No Docker, no kubelet, no controllers."""

from barrack_operator.devcluster.cluster import ControlPlane

__all__ = ["ControlPlane"]
