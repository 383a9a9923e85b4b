# Every container of a workload sets CPU and memory requests and limits.
package glidepath.requests_and_limits

workload_kinds := {"Deployment", "StatefulSet", "DaemonSet", "Job"}

deny contains msg if {
	workload_kinds[input.kind]
	some container in input.spec.template.spec.containers
	some kind in ["requests", "limits"]
	some resource in ["cpu", "memory"]
	not container.resources[kind][resource]
	msg := sprintf("container %s sets no %s %s", [container.name, resource, kind])
}
