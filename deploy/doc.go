// Package deploy holds the cluster-mode Kubernetes deployment of dotmesh:
// plain manifests (kubernetes/) and a Helm chart (helm/dotmesh/). Its tests
// decode every manifest, and every object the chart renders with the real
// helm, strictly against the Kubernetes API types (unknown fields
// rejected), and check that they agree with dm's flags and the CSI driver.
//
// It is a module of its own so that k8s.io/api stays out of the main
// module's dependencies; `make test` runs it.
package deploy
