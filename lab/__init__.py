"""Provision an OpenStack test lab on EC2 (or the local twin of EC2) with boto3."""
