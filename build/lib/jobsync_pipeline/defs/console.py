"""The console logger of every jobsync run: Dagster's own, less the stack trace of a failure a lane
raises on purpose.

A lane fails its run with `dg.Failure` once every board's outcome is recorded, naming each board and
its one-line reason (a 404, a refused file, the expiry guard). Dagster prints every step failure with
the stack of its own frames; for those failures the reasons are the whole story, so the console gets
the message without the stack. Any other exception (a bug, an unexpected error) keeps its traceback,
and the run's event log in the UI keeps everything.
"""
import logging

import dagster as dg

# Dagster uses a job's loggers only for a run whose config names them (else its built-in console
# logger): the lane jobs' default config, the run requests of their schedules and sensors and the CLI's
# runs name this one.
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

_INTENTIONAL = "dagster._core.definitions.events.Failure: "  # how Dagster names a dg.Failure it prints
_STACK = "\n\nStack Trace:\n"


class _ExpectedFailureWithoutStack(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _INTENTIONAL in message and _STACK in message:
            record.msg, record.args = message.split(_STACK, 1)[0], ()
        return True


@dg.logger(dg.colored_console_logger.config_schema,
           description="Dagster's colored console logger; a failure a lane raises on purpose (its boards and "
                       "their reasons) is printed without Dagster's stack trace.")
def console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    built = dg.colored_console_logger.logger_fn(init_context)
    for handler in built.handlers:
        if not any(isinstance(f, _ExpectedFailureWithoutStack) for f in handler.filters):
            handler.addFilter(_ExpectedFailureWithoutStack())
    return built
