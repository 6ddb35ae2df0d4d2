"""Programs that run ON the lab's hosts, shipped as package data (bootstrap/host/*.py).

A plan step copies them to /usr/local/lib/openstack-ec2-lab/ and the plan runs them with
the host's own interpreter: python 2.7 or 3.6 on Ubuntu 18.04 (the Rocky client is
Python 2 there), 3.11 on Debian 12. So each file stands alone: standard library only
(openstack_batch.py also imports the host's openstackclient), Python 2.7 syntax, no
import of this project. They exist so that a host answers with facts (one JSON document,
or one line per check) instead of the plan guessing in shell text, and so that many
slow commands run in one process. tests/test_hostprog_*.py run every one of them on
every interpreter a profile sends it to.

The lab never imports these modules: bootstrap/hostprograms.py reads them as package data.
"""
