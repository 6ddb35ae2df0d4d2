"""Types and facts that lab/ (provisioning), bootstrap/ (install) and twin/ share."""
