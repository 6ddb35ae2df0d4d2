"""Install OpenStack Rocky on the lab's hosts with Fabric, as the official install guide does."""
