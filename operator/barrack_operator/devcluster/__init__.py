"""A real Kubernetes control plane (etcd and kube-apiserver as local processes), the way
controller-runtime's envtest runs one: for the integration tests and for ``barrack-operator
dev-cluster``. No Docker, no kubelet, no controllers.

Next to it, for the tests and the scripts in ``hack/``: the simulator and the operator as processes
(:mod:`.stack`), seeded rounds of changes, crashes and faults with an audit of Barrack
(:mod:`.chaos`), and a fault-injecting proxy in front of the apiserver (:mod:`.kubeproxy`)."""

from barrack_operator.devcluster.cluster import ControlPlane

__all__ = ["ControlPlane"]
