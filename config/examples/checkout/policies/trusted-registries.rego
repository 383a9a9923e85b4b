# Images come from the registries the platform trusts.
package glidepath.trusted_registries

trusted := ["registry.example.org/", "ghcr.io/example-org/"]

deny contains msg if {
	some container in input.spec.template.spec.containers
	not from_trusted(container.image)
	msg := sprintf("container %s uses image %s, which is not from a trusted registry (%s)", [container.name, container.image, concat(", ", trusted)])
}

from_trusted(image) if {
	some prefix in trusted
	startswith(image, prefix)
}
