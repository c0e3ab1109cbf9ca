"""A real Kubernetes control plane (etcd and kube-apiserver as local processes), the way
controller-runtime's envtest runs one: for the integration tests and for ``barrack-operator
dev-cluster``. No Docker, no kubelet, no controllers.

What only the tests and ``hack/`` use beside it (the simulator and operator as processes, the chaos
rounds, the Kubernetes fault proxy) is the test kit, :mod:`barrack_testkit`, outside the product."""

from barrack_operator.devcluster.cluster import ControlPlane

__all__ = ["ControlPlane"]
