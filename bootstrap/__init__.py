"""Install OpenStack Rocky on the lab's hosts with Fabric, as the official install guide does.

The data flows through one module per job:

    components/*.py  the guide's chapters: Steps made of actions (planner.py puts them in order)
    actions.py       the vocabulary: files, packages, services, SQL, openstack commands, rings, waits, ...
    plan.py          Step and Plan (and the phase graph)
    facts.py         what the lab asks a host, typed, all of a step's questions in one round trip
    decide.py        facts in, changes out (decide_cloud.py: SQL, Keystone, rings); pure
    render.py        the one place shell is made
    runner.py        runs (or, with check, only decides) a plan: schedule.py (when), execute.py
                     (one phase on one host), session.py and transfer.py (talking to hosts),
                     waits.py (bounded waits), results.py (what happened)
    report.py        plans, runs and change sets for a person
    host/*.py        the programs that run on the hosts (hostprograms.py ships and calls them)
    verify.py        `lab verify`'s checks
"""
