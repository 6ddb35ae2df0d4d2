"""SQL database on the controller (guide: environment, SQL database), secured with SQL.

mysql_secure_installation is interactive; its effect is done with statements. root keeps
unix_socket authentication, which is how every later step and fact reaches the database
(no password on any command line).
"""

from __future__ import annotations

from bootstrap import guide
from bootstrap.actions import FileSpec, Service, Sql, SqlQuery
from bootstrap.context import PlanContext
from bootstrap.plan import Step

OPENSTACK_CNF = "/etc/mysql/mariadb.conf.d/99-openstack.cnf"

# Anonymous users, root from elsewhere, the test database: what mysql_secure_installation removes.
SECURE_CHECK_SQL = ("SELECT (SELECT count(*) FROM mysql.user WHERE User='' OR (User='root' AND Host NOT IN"
                    " ('localhost','127.0.0.1','::1'))) + (SELECT count(*) FROM information_schema.schemata"
                    " WHERE schema_name='test')")


def secure_sql(accounts: str) -> str:
    """The statements, on the table where this MariaDB keeps its accounts (the profile says)."""
    return (f"DELETE FROM {accounts} WHERE User='';"
            f" DELETE FROM {accounts} WHERE User='root' AND Host NOT IN ('localhost','127.0.0.1','::1');"
            " DROP DATABASE IF EXISTS test;"
            " DELETE FROM mysql.db WHERE Db='test' OR Db='test\\\\_%';"
            " FLUSH PRIVILEGES;")


def openstack_cnf(ip: str) -> str:
    return ("[mysqld]\n"
            f"bind-address = {ip}\n\n"
            "default-storage-engine = innodb\n"
            "innodb_file_per_table = on\n"
            "max_connections = 4096\n"
            "collation-server = utf8_general_ci\n"
            "character-set-server = utf8\n")


def steps(ctx: PlanContext) -> list[Step]:
    controller = (ctx.controller.name,)
    configure = Step("mariadb-config", "controller-services", controller,
                     (FileSpec(OPENSTACK_CNF, openstack_cnf(ctx.controller.private_ip)),
                      Service((ctx.profile.database_service,))), guide=guide.SQL)
    secure = Step("mariadb-secure", "controller-services", controller,
                  (Sql(secure_sql(ctx.profile.database_accounts), SqlQuery(SECURE_CHECK_SQL), "0",
                       "remove anonymous users, remote root and the test database"),), guide=guide.SQL)
    return [configure, secure]
