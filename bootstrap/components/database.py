"""SQL database on the controller (guide: environment, SQL database), secured with SQL.

mysql_secure_installation is interactive; its effect is done with statements. root keeps
unix_socket authentication, which is how every later step and check reaches the database
(no password on any command line).
"""

from __future__ import annotations

import shlex

from bootstrap.context import PlanContext, enable_units
from bootstrap.plan import FileSpec, Step

OPENSTACK_CNF = "/etc/mysql/mariadb.conf.d/99-openstack.cnf"

SECURE_SQL = ("DELETE FROM mysql.global_priv WHERE User='';"
              " DELETE FROM mysql.global_priv WHERE User='root' AND Host NOT IN ('localhost','127.0.0.1','::1');"
              " DROP DATABASE IF EXISTS test;"
              " DELETE FROM mysql.db WHERE Db='test' OR Db='test\\\\_%';"
              " FLUSH PRIVILEGES;")
# Ubuntu 18.04's MariaDB 10.1 has no global_priv: there the same rows live in mysql.user.
_SECURE_SQL_OLD = SECURE_SQL.replace("mysql.global_priv", "mysql.user")
SECURE_CHECK_SQL = ("SELECT (SELECT count(*) FROM mysql.user WHERE User='' OR (User='root' AND Host NOT IN"
                    " ('localhost','127.0.0.1','::1'))) + (SELECT count(*) FROM information_schema.schemata"
                    " WHERE schema_name='test')")


def openstack_cnf(ip: str) -> str:
    return ("[mysqld]\n"
            f"bind-address = {ip}\n\n"
            "default-storage-engine = innodb\n"
            "innodb_file_per_table = on\n"
            "max_connections = 4096\n"
            "collation-server = utf8_general_ci\n"
            "character-set-server = utf8\n")


def mysql(sql: str, database: str = "") -> str:
    return f"mysql -N -B {database} -e {shlex.quote(sql)}".replace("  ", " ")


def steps(ctx: PlanContext) -> list[Step]:
    service = ctx.profile.database_service
    controller = (ctx.controller.name,)
    configure = Step(name="mariadb-config", phase="controller-services", hosts=controller,
                     files=(FileSpec(OPENSTACK_CNF, openstack_cnf(ctx.controller.private_ip)),),
                     commands=(enable_units(service), f"systemctl restart {service}"),
                     check=f"systemctl is-active --quiet {service}")
    secure = Step(name="mariadb-secure", phase="controller-services", hosts=controller,
                  commands=(f"{mysql(SECURE_SQL)} || {mysql(_SECURE_SQL_OLD)}",),
                  check=f'[ "$({mysql(SECURE_CHECK_SQL)})" = 0 ]')
    return [configure, secure]
