"""`notifyctl`: the operators' command, beside the API and the workers.

`notifyctl dlq list|show|replay|purge|history`. Settings come from the environment like every
process (`NOTIFY_*`, `RABBITMQ_URL`, `MONGODB_URL`), read at the entry point
(`notifyctl.session.run`). The work is `shared.dlq.DeadLetters`, the same code the admin RPCs
run; the CLI may act on every tenant (`--tenant` narrows it).

Exit codes: 0 done; 1 nothing matched (show, replay, purge) or the confirmation was declined;
2 bad usage; 3 RabbitMQ or MongoDB unavailable; 4 another operation holds a DLQ (retry).

Modules: `app` the command tree; `reading` list, show and history; `changing` replay and
purge; `options` the options they share and the filter they make; `session` settings,
resources and exit codes; `output` and `progress` what the operator sees.
"""
