"""Sending many messages of one Celery task for less CPU than `send_task` spends on each.

A busy worker sends the next takes' render tasks itself, one per slot its settlement frees, so sending is
on the generation queue's hot path. Through `app.send_task` a message cost 540 us of CPU here, most of
it not the message: a new Redis client per publish (redis-py fills a 169-entry table for each), kombu's
retrying publish wrapper, and Celery resolving options and routing anew for every message. On Redis
`send_tasks` builds each message with Celery's own `app.amqp.create_task_message`, wraps it with kombu's
channel as kombu's Redis transport does, and pushes it with one client kept per channel: 207-233 us for
one message, 123-147 us each for three (one pipeline), measured here. Other brokers (the embedded mode's
filesystem broker), tasks whose results are kept and options this path does not know go through
`app.send_task`.
tests/planner/test_queue_sending.py holds a message sent here to the one `apply_async` sends.

It sends no `before_task_publish`/`after_task_publish` signals (nothing here listens to them).
"""

import weakref
from contextlib import nullcontext
from functools import cache

import redis
from celery.local import Proxy
from kombu import serialization
from kombu.entity import maybe_delivery_mode
from kombu.exceptions import OperationalError
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps
from kombu.utils.uuid import uuid

# A Redis client per kombu channel, for its connection pool: kombu builds a new client for every publish.
_clients: "weakref.WeakKeyDictionary[kombu_redis.Channel, redis.Redis]" = weakref.WeakKeyDictionary()


def send_tasks(task, arguments: list[tuple]) -> None:
    """Send `task` once per tuple of positional arguments, in order; on Redis in one round trip.

    Raises kombu's OperationalError when the broker cannot be reached or fails on the way; which of the
    messages arrived is then unknown (a task must tolerate being sent again)."""
    if isinstance(task, Proxy):  # a shared_task: the proxy looks the task up again on every attribute
        task = task._get_current_object()
    app = task.app
    queue = app.amqp.router.route({}, task.name)["queue"]
    with app.producer_or_acquire() as producer:
        channel = producer.channel
        if not _can_push(app, task, queue, channel):
            with producer.batch() if len(arguments) > 1 else nullcontext():
                for args in arguments:
                    app.send_task(
                        task.name, args, producer=producer, queue=queue, ignore_result=task.ignore_result
                    )
            return
        if hash(queue) not in producer.connection.declared_entities:
            producer.maybe_declare(queue)  # kombu's own check: the first message on a connection declares
        messages = [_message(app, task, channel, queue, args) for args in arguments]
        try:
            client = _clients.get(channel) or _clients.setdefault(channel, channel._create_client())
            if len(messages) == 1:
                client.lpush(queue.name, messages[0])
            else:
                with client.pipeline(transaction=False) as pipeline:
                    for message in messages:
                        pipeline.lpush(queue.name, message)
                    pipeline.execute()
        except redis.RedisError as error:
            raise OperationalError(f"Redis refused or lost the {task.name} messages: {error}") from error


# The execution options of a task that change the message or where it goes; the others (time limits, set
# from the task as `send_task` does, and ignore_result) it carries as they are.
_ROUTING_OPTIONS = ("queue", "routing_key", "exchange", "priority", "expires", "delivery_mode", "compression")


def _can_push(app, task, queue, channel) -> bool:
    """Whether a message pushed straight onto the queue's Redis list is what `send_task` would send: the
    Redis transport, the default exchange (direct), JSON, and none of priority, expiry, compression or
    sent events."""
    return (
        isinstance(channel, kombu_redis.Channel)
        and queue.exchange.type == "direct"
        and not (queue.expires or queue.message_ttl or queue.max_priority)
        and _plain_messages(app, task.name)
    )


@cache
def _plain_messages(app, task_name: str) -> bool:
    """The task's and the app's settings that would change its messages, read once per process (reading
    Celery's configuration is slow; these are not changed at run time). A task whose results are kept
    needs its result backend told of every message sent (`send_task` does that)."""
    task = app.tasks[task_name]
    options = task._get_exec_options()
    return (
        task.ignore_result
        and not any(options.get(name) for name in _ROUTING_OPTIONS)
        and (options.get("serializer") or app.conf.task_serializer) == "json"
        and not (app.conf.task_send_sent_event or app.conf.task_compression)
        and app.conf.task_default_priority is None
        and not app.conf.task_inherit_parent_priority
    )


def _repr(args: tuple) -> str | None:
    """The arguments as the message shows them: `repr`, as Celery's saferepr writes small ones; None (Celery
    shortens it) for anything but a few numbers."""
    return repr(args) if len(args) < 8 and all(type(arg) is int for arg in args) else None


def _message(app, task, channel, queue, args: tuple) -> str:
    """The payload kombu's Redis transport pushes for this task and these arguments, as JSON."""
    task_id = uuid()
    parent = app.current_worker_task  # as send_task: a task sent from a task carries its ids
    root_id = parent_id = None
    if parent:
        root_id, parent_id = parent.request.root_id or parent.request.id, parent.request.id
    headers, properties, body, _ = app.amqp.create_task_message(
        task_id,
        task.name,
        args,
        {},
        reply_to=app.thread_oid,
        root_id=root_id,
        parent_id=parent_id,
        time_limit=task.time_limit,
        soft_time_limit=task.soft_time_limit,
        ignore_result=True,
        argsrepr=_repr(args),
        kwargsrepr="{}",
    )
    content_type, content_encoding, body = serialization.dumps(body, serializer="json")
    if isinstance(body, str):
        body = body.encode(content_encoding)
    properties["delivery_mode"] = maybe_delivery_mode(
        queue.exchange.delivery_mode or app.conf.task_default_delivery_mode
    )
    message = channel.prepare_message(body, 0, content_type, content_encoding, headers, properties)
    message["body"], encoding = channel.encode_body(message["body"], channel.body_encoding)
    message["properties"].update(
        body_encoding=encoding,
        delivery_tag=uuid(),
        delivery_info={"exchange": "", "routing_key": queue.name},
    )
    return dumps(message)
