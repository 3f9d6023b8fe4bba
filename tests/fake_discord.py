"""A loopback server that speaks enough of Discord's REST API and gateway for discord.py.

It runs in its own thread and event loop, so a bot under test can live in the
test's loop or in another process. It records every REST request, keeps the
messages posted per channel, and lets a test send slash-command and button
interactions through the gateway as Discord would.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.loopback import unused_port

APP_ID = "900000000000000001"
BOT_ID = APP_ID
GUILD_ID = "910000000000000001"
OTHER_GUILD_ID = "910000000000000002"


def shard_of(guild_id: str, shard_count: int) -> int:
    """Discord's rule for which gateway shard carries a server's events."""
    return (int(guild_id) >> 22) % shard_count


CHANNEL_ID = "920000000000000001"
SECOND_CHANNEL_ID = "920000000000000002"
OTHER_GUILD_CHANNEL_ID = "920000000000000009"
ADMIN_ID = "930000000000000001"
MEMBER_ID = "930000000000000002"
MANAGE_CHANNELS = 1 << 4
ADMIN_PERMISSIONS = str((1 << 11) | (1 << 10) | MANAGE_CHANNELS | (1 << 14) | (1 << 15))
MEMBER_PERMISSIONS = str((1 << 11) | (1 << 10))

_snowflakes = itertools.count(950000000000000000)


def snowflake() -> str:
    return str(next(_snowflakes))


def time_snowflake() -> str:
    """An id as Discord makes them: milliseconds since Discord's epoch, then a counter."""
    milliseconds = int(time.time() * 1000) - 1_420_070_400_000
    return str((milliseconds << 22) | (next(_snowflakes) & 0x3FFFFF))


def user(user_id: str, name: str, bot: bool = False) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
        "flags": 0,
    }


def text_channel(channel_id: str, guild_id: str, name: str, position: int = 0) -> dict[str, Any]:
    return {
        "id": channel_id,
        "type": 0,
        "guild_id": guild_id,
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }


FORUM_ID = "920000000000000005"
BOT_ROLE_ID = "940000000000000009"  # the bot's own role: Manage Channels, when a test gives it


def forum_channel(channel_id: str, guild_id: str, name: str, tags: list[str]) -> dict[str, Any]:
    return {
        **text_channel(channel_id, guild_id, name, 3),
        "type": 15,
        "available_tags": [
            {
                "id": f"95000000000000{n:04d}",
                "name": t,
                "moderated": False,
                "emoji_id": None,
                "emoji_name": None,
            }
            for n, t in enumerate(tags)
        ],
        "default_reaction_emoji": None,
        "default_sort_order": None,
        "default_forum_layout": 0,
        "default_thread_rate_limit_per_user": 0,
    }


PAPERS_ROLE_ID = "940000000000000001"  # mentionable
QUIET_ROLE_ID = "940000000000000002"  # not mentionable


def role(role_id: str, name: str, mentionable: bool, position: int) -> dict[str, Any]:
    return {
        "id": role_id,
        "name": name,
        "permissions": "0",
        "position": position,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": mentionable,
        "flags": 0,
    }


def guild(
    guild_id: str, channels: list[dict[str, Any]], bot_roles: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "id": guild_id,
        "name": f"Guild {guild_id[-1]}",
        "icon": None,
        "owner_id": ADMIN_ID,
        "roles": [
            {
                "id": guild_id,
                "name": "@everyone",
                "permissions": MEMBER_PERMISSIONS,
                "position": 0,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            },
            role(PAPERS_ROLE_ID, "paper readers", True, 1),
            role(QUIET_ROLE_ID, "quiet @here **role**", False, 2),
            {**role(BOT_ROLE_ID, "arxiv-bot", False, 3), "permissions": str(MANAGE_CHANNELS)},
        ],
        "channels": channels,
        "threads": [],
        "members": [
            {
                "user": user(BOT_ID, "arxiv-bot", bot=True),
                "roles": list(bot_roles),
                "joined_at": "2025-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
            }
        ],
        "member_count": 3,
        "large": False,
        "features": [],
        "emojis": [],
        "stickers": [],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "unavailable": False,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "premium_tier": 0,
        "nsfw_level": 0,
        "preferred_locale": "en-US",
        "system_channel_flags": 0,
        "afk_timeout": 300,
        "joined_at": "2025-01-01T00:00:00+00:00",
    }


def _multipart(raw: bytes, headers: Any) -> dict[str, Any]:
    """A multipart request (a message with files) as discord.py sends it: the JSON of
    `payload_json`, plus the files as `_files` (name and text)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + raw
    )
    body: dict[str, Any] = {"_files": []}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        content = part.get_payload(decode=True) or b""
        if name == "payload_json":
            body.update(json.loads(content))
        else:
            filename = part.get_filename()
            body["_files"].append(
                {"filename": filename, "text": content.decode("utf-8", "replace")}
            )
    return body


IS_COMPONENTS_V2 = 1 << 15


def _walk_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every component of a message, nested ones (rows' buttons, sections' accessories,
    containers' children) included: what Discord counts against its limit of 40."""
    found = []
    for component in components:
        found.append(component)
        found += _walk_components(component.get("components") or [])
        if component.get("accessory"):
            found += _walk_components([component["accessory"]])
    return found


def layout_problem(body: dict[str, Any]) -> str | None:
    """Why Discord would refuse this message, for the rules of layout messages."""
    if not (body.get("flags") or 0) & IS_COMPONENTS_V2:
        return None
    if body.get("content") or body.get("embeds"):
        return "content and embeds cannot be used with IS_COMPONENTS_V2"
    every = _walk_components(body.get("components") or [])
    if len(every) > 40:
        return f"{len(every)} components, more than 40"
    text = sum(len(c.get("content") or "") + len(c.get("label") or "") for c in every)
    if text > 4000:
        return f"{text} characters of text, more than 4000"
    return None


@dataclass
class ChannelFault:
    status: int
    times: int = 1_000_000  # how many requests it applies to
    retry_after: float = 0.2


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    at: float


@dataclass
class FakeDiscord:
    heartbeat_interval_ms: int = 1000
    requests: list[Recorded] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    interaction_responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    nonces: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # Faults of the connection itself, for the supervisor's tests.
    refuse_token: bool = False  # login answers 401
    rest_delay: float = 0.0  # seconds before every REST answer
    gateway_refusals: int = 0  # this many gateway lookups name a port nobody listens on
    close_codes: list[int] = field(default_factory=list)  # close after READY, one per connect
    readies: int = 0  # READY events sent: sessions the bot (re)started
    resets: int = 0  # this many message posts have their connection dropped, unanswered
    # Random faults for soak benchmarks, drawn from `fault_seed`:
    post_error_rate: float = 0.0  # this share of messages are answered 500 at first attempt
    post_reset_rate: float = 0.0  # this share of posts lose their connection, half of them
    fault_seed: int = 0  # after Discord stored the message (only the answer is lost)
    faults_injected: Counter[str] = field(default_factory=Counter)
    commands: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: list[float] = field(default_factory=list)
    channel_faults: dict[str, ChannelFault] = field(default_factory=dict)
    rate_limit_headers: bool = True
    post_latency: float = 0.0  # seconds before answering a channel message (benchmarks)
    global_limit_per_s: int | None = None  # Discord's global limit is 50 requests/s
    last_post_at: float = 0.0  # time.monotonic() when a message was last stored
    closed_dms: set[str] = field(default_factory=set)  # users who accept no direct message
    gone_users: set[str] = field(default_factory=set)  # deleted accounts: 404
    threads_started: int = 0
    bot_manages_channels: bool = False  # the bot's role has Manage Channels
    dm_channels: dict[str, str] = field(default_factory=dict)  # DM channel id -> user id
    identified: threading.Event = field(default_factory=threading.Event)
    shards_identified: list[tuple[int, int]] = field(default_factory=list)
    recommended_shards: int = 1

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._sockets: list[web.WebSocketResponse] = []
        # The shard each connection identified as, (id, count): events of a server go to
        # its shard only, as Discord routes them.
        self._shard_of_socket: dict[int, tuple[int, int]] = {}
        self._sequence = itertools.count(1)
        self._recent_posts: deque[float] = deque()
        self._lock = threading.Lock()
        self._faults = random.Random(self.fault_seed)
        self._failed_once: set[tuple[str, str]] = set()
        self.port = 0
        self.channels = {
            CHANNEL_ID: text_channel(CHANNEL_ID, GUILD_ID, "papers", 0),
            SECOND_CHANNEL_ID: text_channel(SECOND_CHANNEL_ID, GUILD_ID, "more-papers", 1),
            OTHER_GUILD_CHANNEL_ID: text_channel(OTHER_GUILD_CHANNEL_ID, OTHER_GUILD_ID, "x", 0),
            FORUM_ID: forum_channel(FORUM_ID, GUILD_ID, "paper-forum", ["quantization", "pruning"]),
        }

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    def start(self) -> FakeDiscord:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _serve(self) -> None:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _shutdown(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        await self._runner.cleanup()

    # -- what a test does ------------------------------------------------------------

    def wait_ready(self, timeout: float = 15) -> None:
        if not self.identified.wait(timeout):
            raise TimeoutError("the bot never identified on the gateway")

    def direct_messages(self, user_id: str) -> list[dict[str, Any]]:
        channel = next((c for c, u in self.dm_channels.items() if u == user_id), None)
        return self.posted(channel) if channel else []

    def posted(self, channel_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages.get(channel_id, []))

    def interact(self, payload: dict[str, Any]) -> None:
        """Deliver an INTERACTION_CREATE to every connected bot."""
        asyncio.run_coroutine_threadsafe(
            self._dispatch("INTERACTION_CREATE", payload), self._loop
        ).result(5)

    def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        subcommand: str | None = None,
        user_id: str = ADMIN_ID,
        permissions: str = ADMIN_PERMISSIONS,
        guild_id: str = GUILD_ID,
        channel_id: str = CHANNEL_ID,
    ) -> str:
        """Run a slash command as a user would; returns the interaction token."""
        command = next((c for c in self.commands if c["name"] == name), None)
        if command is None:
            raise KeyError(f"/{name} is not registered")
        typed = [self._typed_option(command, subcommand, k, v) for k, v in (options or {}).items()]
        resolved: dict[str, Any] = {}
        for option in typed:
            if option["type"] == 8:  # a role, resolved likewise
                known = {r["id"]: r for r in guild(guild_id, [])["roles"]}
                resolved.setdefault("roles", {})[option["value"]] = known[option["value"]]
            if option["type"] == 7:  # a channel: Discord sends what it resolved to
                channel = self.channels.get(
                    option["value"], text_channel(option["value"], guild_id, "c")
                )
                resolved.setdefault("channels", {})[option["value"]] = {
                    **channel,
                    "permissions": ADMIN_PERMISSIONS,
                }
        if subcommand:
            typed = [{"name": subcommand, "type": 1, "options": typed}]
        token = f"token-{snowflake()}"
        data = {
            "id": command["id"],
            "name": name,
            "type": 1,
            "options": typed,
            "guild_id": guild_id,
        }
        if resolved:
            data["resolved"] = resolved
        self.interact(
            self._interaction(
                2,
                token,
                data,
                user_id=user_id,
                permissions=permissions,
                guild_id=guild_id,
                channel_id=channel_id,
            )
        )
        return token

    def autocomplete(self, name: str, option: str, typed: str, **others: Any) -> str:
        """Typing in an option with autocomplete, as Discord sends it."""
        command = next(c for c in self.commands if c["name"] == name)
        options = [self._typed_option(command, None, k, v) for k, v in others.items()]
        options.append({**self._typed_option(command, None, option, typed), "focused": True})
        token = f"token-{snowflake()}"
        self.interact(
            self._interaction(
                4,
                token,
                {
                    "id": command["id"],
                    "name": name,
                    "type": 1,
                    "options": options,
                    "guild_id": GUILD_ID,
                },
                user_id=ADMIN_ID,
                permissions=ADMIN_PERMISSIONS,
                guild_id=GUILD_ID,
                channel_id=CHANNEL_ID,
            )
        )
        return token

    def click(
        self,
        custom_id: str,
        message: dict[str, Any],
        *,
        user_id: str = ADMIN_ID,
        permissions: str = ADMIN_PERMISSIONS,
        channel_id: str = CHANNEL_ID,
    ) -> str:
        token = f"token-{snowflake()}"
        payload = self._interaction(
            3,
            token,
            {"custom_id": custom_id, "component_type": 2},
            user_id=user_id,
            permissions=permissions,
            guild_id=GUILD_ID,
            channel_id=channel_id,
        )
        payload["message"] = message
        self.interact(payload)
        return token

    def responses(self, token: str, wait: float = 10, count: int = 1) -> list[dict[str, Any]]:
        """The callback and follow-ups sent for an interaction, waiting for `count` of them."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with self._lock:
                found = list(self.interaction_responses.get(token, []))
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise TimeoutError(f"no response to interaction {token}: {found}")

    def wait_for_messages(
        self, channel_id: str, count: int, wait: float = 10
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            found = self.posted(channel_id)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise TimeoutError(
            f"{len(self.posted(channel_id))} messages in {channel_id}, wanted {count}"
        )

    # -- gateway -----------------------------------------------------------------------

    def _interaction(
        self,
        kind: int,
        token: str,
        data: dict[str, Any],
        *,
        user_id: str,
        permissions: str,
        guild_id: str,
        channel_id: str,
    ) -> dict[str, Any]:
        return {
            "id": snowflake(),
            "application_id": APP_ID,
            "type": kind,
            "token": token,
            "version": 1,
            "guild_id": guild_id,
            "channel_id": channel_id,
            "channel": self.channels.get(channel_id, text_channel(channel_id, guild_id, "c")),
            "member": {
                "user": user(user_id, f"user{user_id[-1]}"),
                "roles": [],
                "permissions": permissions,
                "joined_at": "2025-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
            },
            "data": data,
            "app_permissions": ADMIN_PERMISSIONS,
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {},
            "context": 0,
            "attachment_size_limit": 8388608,
        }

    @staticmethod
    def _typed_option(command: dict, subcommand: str | None, name: str, value: Any) -> dict:
        options = command.get("options", [])
        if subcommand:
            options = next(o for o in options if o["name"] == subcommand).get("options", [])
        spec = next((o for o in options if o["name"] == name), None)
        if spec is None:
            raise KeyError(f"/{command['name']} has no option {name!r}")
        return {"name": name, "type": spec["type"], "value": value}

    async def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        guild_id = data.get("guild_id")
        for socket in list(self._sockets):
            shard = self._shard_of_socket.get(id(socket), (0, 1))
            if guild_id and shard_of(guild_id, shard[1]) != shard[0]:
                continue
            if not socket.closed:
                await socket.send_str(
                    json.dumps({"op": 0, "t": event, "s": next(self._sequence), "d": data})
                )

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        await socket.send_str(
            json.dumps({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
        )
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            payload = json.loads(message.data)
            if payload["op"] == 1:
                self.heartbeats.append(time.monotonic())
                await socket.send_str(json.dumps({"op": 11}))
            elif payload["op"] in (2, 6):  # identify, or resume: start afresh
                shard_id, shard_count = payload["d"].get("shard") or [0, 1]
                self._shard_of_socket[id(socket)] = (shard_id, shard_count)
                with self._lock:
                    self.shards_identified.append((shard_id, shard_count))
                code = self.close_codes.pop(0) if self.close_codes else None
                if code == 4004:  # Discord refuses the token at identify
                    await socket.close(code=4004, message=b"Authentication failed.")
                    break
                await self._ready(socket)
                if code == 1006 and request.transport is not None:
                    request.transport.abort()  # gone without a close frame: 1006 for the client
                    break
                if code is not None:
                    await socket.close(code=code, message=b"fake close")
                    break
        self._sockets.remove(socket)
        self._shard_of_socket.pop(id(socket), None)
        return socket

    async def _ready(self, socket: web.WebSocketResponse) -> None:
        self.readies += 1
        shard_id, shard_count = self._shard_of_socket.get(id(socket), (0, 1))
        guild_ids = [g for g in (GUILD_ID, OTHER_GUILD_ID) if shard_of(g, shard_count) == shard_id]
        ready = {
            "v": 10,
            "user": user(BOT_ID, "arxiv-bot", bot=True),
            "guilds": [{"id": g, "unavailable": True} for g in guild_ids],
            "session_id": f"session-{snowflake()}",
            "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway",
            "application": {"id": APP_ID, "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "shard": [shard_id, shard_count],
        }
        await socket.send_str(
            json.dumps({"op": 0, "t": "READY", "s": next(self._sequence), "d": ready})
        )
        for guild_id in guild_ids:
            channels = [c for c in self.channels.values() if c["guild_id"] == guild_id]
            await socket.send_str(
                json.dumps(
                    {
                        "op": 0,
                        "t": "GUILD_CREATE",
                        "s": next(self._sequence),
                        "d": guild(
                            guild_id,
                            channels,
                            (BOT_ROLE_ID,) if self.bot_manages_channels else (),
                        ),
                    }
                )
            )
        self.identified.set()

    # -- REST --------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        if self.rest_delay:
            await asyncio.sleep(self.rest_delay)
        if self.refuse_token and path == "/users/@me":
            return self._json({"message": "401: Unauthorized", "code": 0}, 401)
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json":
                body = json.loads(raw or b"null")
            elif request.content_type.startswith("multipart"):
                body = _multipart(raw, request.headers)
        posting = request.method == "POST" and path.endswith("/messages")
        with self._lock:
            self.requests.append(Recorded(request.method, path, body, time.monotonic()))
            reset = self.resets > 0 and posting
            if reset:
                self.resets -= 1
            random_fault = self._random_fault(path, body) if posting else None
        if random_fault == "error":
            return self._json({"message": "500: Internal Server Error", "code": 0}, 500)
        if random_fault == "reset after store":
            await self._route(request.method, path, body)  # stored; only the answer is lost
            reset = True
        if (reset or random_fault == "reset") and request.transport is not None:
            request.transport.abort()  # the connection drops before any answer
            return web.Response(status=500)
        return await self._route(request.method, path, body)

    def _random_fault(self, path: str, body: Any) -> str | None:
        """One seeded draw per post: a 500 the first time a message is tried, or a dropped
        connection (before, or after, the message is stored)."""
        key = (path, str(body.get("nonce") if isinstance(body, dict) else None))
        draw = self._faults.random()
        if key not in self._failed_once and draw < self.post_error_rate:
            self._failed_once.add(key)
            self.faults_injected["error"] += 1
            return "error"
        self._failed_once.add(key)
        if self._faults.random() < self.post_reset_rate:
            fault = "reset" if self._faults.random() < 0.5 else "reset after store"
            self.faults_injected[fault] += 1
            return fault
        return None

    def _json(
        self, data: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        # discord.py reads JSON only with exactly this content type.
        response = web.Response(
            status=status, body=json.dumps(data).encode(), headers=headers or {}
        )
        response.content_type = "application/json"
        return response

    async def _route(self, method: str, path: str, body: Any) -> web.Response:
        parts = path.strip("/").split("/")
        if path == "/users/@me":
            return self._json(user(BOT_ID, "arxiv-bot", bot=True))
        if path == "/oauth2/applications/@me":
            return self._json(
                {
                    "id": APP_ID,
                    "name": "arxiv-bot",
                    "icon": None,
                    "description": "",
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "flags": 0,
                    "owner": user(ADMIN_ID, "owner"),
                    "team": None,
                    "verify_key": "x",
                }
            )
        if path == "/gateway/bot":
            port = self.port
            if self.gateway_refusals > 0:
                self.gateway_refusals -= 1
                port = unused_port()
            return self._json(
                {
                    "url": f"ws://127.0.0.1:{port}/gateway",
                    "shards": self.recommended_shards,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 999,
                        "reset_after": 0,
                        "max_concurrency": 1,
                    },
                }
            )
        if parts[0] == "applications" and parts[-1] == "commands" and method == "PUT":
            with self._lock:
                self.commands = [
                    {
                        **c,
                        "id": snowflake(),
                        "application_id": APP_ID,
                        "version": snowflake(),
                        "guild_id": parts[3] if len(parts) > 3 else None,
                    }
                    for c in body
                ]
            return self._json(self.commands)
        if parts[0] == "applications" and parts[-1] == "commands":
            return self._json(self.commands)
        if parts[0] == "interactions" and parts[-1] == "callback":
            return self._interaction_callback(parts[1], parts[2], body)
        if parts[0] == "webhooks":
            return self._webhook(method, parts, body)
        if (
            parts[0] == "channels"
            and len(parts) == 3
            and parts[2] == "messages"
            and method == "POST"
        ):
            return await self._channel_message(parts[1], body)
        if (
            parts[0] == "channels"
            and len(parts) == 5
            and parts[2] == "messages"
            and parts[4] == "threads"
            and method == "POST"
        ):
            return self._start_thread(parts[1], parts[3], body)
        if (
            parts[0] == "channels"
            and len(parts) == 3
            and parts[2] == "threads"
            and method == "POST"
        ):
            return self._forum_post(parts[1], body)
        if parts[0] == "guilds" and parts[-2:] == ["threads", "active"]:
            with self._lock:
                threads = [
                    c
                    for c in self.channels.values()
                    if c.get("type") == 11 and c["guild_id"] == parts[1]
                ]
            return self._json({"threads": threads, "members": []})
        if parts[0] == "channels" and len(parts) == 2 and method == "PATCH":
            return self._edit_channel(parts[1], body)
        if path == "/users/@me/channels" and method == "POST":
            recipient = str(body["recipient_id"])
            channel_id = "96" + recipient[2:]
            with self._lock:
                self.dm_channels[channel_id] = recipient
            return self._json(
                {
                    "id": channel_id,
                    "type": 1,
                    "recipients": [user(recipient, f"user{recipient[-1]}")],
                    "last_message_id": None,
                }
            )
        if parts[0] == "users" and len(parts) == 2 and method == "GET":
            if parts[1] in self.gone_users:
                return self._json({"message": "Unknown User", "code": 10013}, 404)
            return self._json(user(parts[1], f"user{parts[1][-1]}"))
        if parts[0] == "channels" and len(parts) == 2 and method == "GET":
            channel = self.channels.get(parts[1])
            return (
                self._json(channel)
                if channel
                else self._json({"message": "Unknown Channel", "code": 10003}, 404)
            )
        return self._json({"message": f"fake discord has no route {method} {path}", "code": 0}, 404)

    def _forum_post(self, forum_id: str, body: dict[str, Any]) -> web.Response:
        """A forum post: a thread with its first message and the tags applied."""
        forum = self.channels.get(forum_id)
        if forum is None or forum.get("type") != 15:
            return self._json({"message": "Unknown Channel", "code": 10003}, 404)
        first = body.get("message") or {}
        problem = layout_problem(first)
        if problem is not None:
            return self._json({"message": f"Invalid Form Body: {problem}", "code": 50035}, 400)
        known = {t["id"] for t in forum["available_tags"]}
        if any(str(t) not in known for t in body.get("applied_tags") or []):
            return self._json({"message": "Invalid Form Body: unknown tag", "code": 50035}, 400)
        thread_id = time_snowflake()  # Discord's ids carry their creation time
        thread = {
            **text_channel(thread_id, forum["guild_id"], body["name"]),
            "type": 11,
            "parent_id": forum_id,
            "owner_id": BOT_ID,
            "applied_tags": [str(t) for t in body.get("applied_tags") or []],
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": "2025-11-12T12:00:00+00:00",
                "locked": False,
            },
            "message_count": 1,
            "member_count": 1,
        }
        message = self._message(thread_id, first)
        with self._lock:
            self.channels[thread_id] = thread
            self.messages.setdefault(thread_id, []).append(message)
            self.last_post_at = time.monotonic()
        return self._json({**thread, "message": message}, 201)

    def _edit_channel(self, channel_id: str, body: dict[str, Any]) -> web.Response:
        """Editing a forum's tags (creating one), which needs Manage Channels."""
        channel = self.channels.get(channel_id)
        if channel is None:
            return self._json({"message": "Unknown Channel", "code": 10003}, 404)
        if not self.bot_manages_channels:
            return self._json({"message": "Missing Permissions", "code": 50013}, 403)
        if any(len(t.get("name", "")) > 20 for t in body.get("available_tags") or []):
            return self._json(
                {
                    "message": "Invalid Form Body: tag names have 20 characters at most",
                    "code": 50035,
                },
                400,
            )
        with self._lock:
            if "available_tags" in body:
                channel["available_tags"] = [
                    {
                        "id": str(t.get("id") or snowflake()),
                        "moderated": False,
                        "emoji_id": None,
                        "emoji_name": None,
                        **{k: v for k, v in t.items() if k != "id"},
                    }
                    for t in body["available_tags"]
                ]
        return self._json(channel)

    def _start_thread(self, channel_id: str, message_id: str, body: dict[str, Any]) -> web.Response:
        """A thread from a message: its id is the message's; a second start is refused."""
        with self._lock:
            if message_id in self.channels:
                return self._json(
                    {
                        "message": "A thread has already been created for this message",
                        "code": 160004,
                    },
                    400,
                )
            parent = self.channels.get(channel_id)
            if parent is None:
                return self._json({"message": "Unknown Channel", "code": 10003}, 404)
            thread = {
                **text_channel(message_id, parent["guild_id"], body.get("name", "thread")),
                "type": 11,
                "parent_id": channel_id,
                "owner_id": BOT_ID,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": body.get("auto_archive_duration", 1440),
                    "archive_timestamp": "2025-11-12T12:00:00+00:00",
                    "locked": False,
                },
                "message_count": 0,
                "member_count": 1,
            }
            self.channels[message_id] = thread
            self.threads_started += 1
        return self._json(thread, 201)

    def _message(self, channel_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": snowflake(),
            "channel_id": channel_id,
            "author": user(BOT_ID, "arxiv-bot", bot=True),
            "content": body.get("content") or "",
            "timestamp": "2025-11-12T12:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "type": 0,
            "flags": body.get("flags") or 0,
            "allowed_mentions": body.get("allowed_mentions"),
        }

    async def _channel_message(self, channel_id: str, body: dict[str, Any]) -> web.Response:
        if self.post_latency:
            await asyncio.sleep(self.post_latency)
        if self.global_limit_per_s:
            now = time.monotonic()
            recent = self._recent_posts
            while recent and now - recent[0] > 1.0:
                recent.popleft()
            if len(recent) >= self.global_limit_per_s:
                wait = round(1.0 - (now - recent[0]), 3)
                return self._json(
                    {"message": "You are being rate limited.", "retry_after": wait, "global": True},
                    429,
                    {
                        "Retry-After": str(wait),
                        "X-RateLimit-Global": "true",
                        "X-RateLimit-Scope": "global",
                        "Via": "1.1 google",
                    },
                )
            recent.append(now)
        fault = self.channel_faults.get(channel_id)
        if fault and fault.times > 0:
            fault.times -= 1
            if fault.status == 429:
                return self._json(
                    {
                        "message": "You are being rate limited.",
                        "retry_after": fault.retry_after,
                        "global": False,
                    },
                    429,
                    {
                        "Retry-After": str(fault.retry_after),
                        "X-RateLimit-Limit": "5",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset-After": str(fault.retry_after),
                        "X-RateLimit-Bucket": f"bucket-{channel_id}",
                        "X-RateLimit-Scope": "user",
                        "Via": "1.1 google",
                    },
                )
            code = {403: 50013, 404: 10003}.get(fault.status, 0)
            return self._json({"message": "fake failure", "code": code}, fault.status)
        recipient = self.dm_channels.get(channel_id)
        if recipient in self.closed_dms:
            return self._json({"message": "Cannot send messages to this user", "code": 50007}, 403)
        if channel_id not in self.channels and recipient is None:
            return self._json({"message": "Unknown Channel", "code": 10003}, 404)
        problem = layout_problem(body)
        if problem is not None:
            return self._json({"message": f"Invalid Form Body: {problem}", "code": 50035}, 400)
        nonce = body.get("nonce") if body.get("enforce_nonce") else None
        with self._lock:
            # Discord's enforce_nonce: the same nonce in a channel returns the first message.
            if nonce is not None and (channel_id, str(nonce)) in self.nonces:
                return self._json(self.nonces[(channel_id, str(nonce))])
        message = self._message(channel_id, body)
        with self._lock:
            self.messages.setdefault(channel_id, []).append(message)
            self.last_post_at = time.monotonic()
            if nonce is not None:
                self.nonces[(channel_id, str(nonce))] = message
        headers = {}
        if self.rate_limit_headers:
            headers = {
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "4",
                "X-RateLimit-Reset-After": "0.01",
                "X-RateLimit-Bucket": f"bucket-{channel_id}",
            }
        return self._json(message, headers=headers)

    def _interaction_callback(
        self, interaction_id: str, token: str, body: dict[str, Any]
    ) -> web.Response:
        data = body.get("data") or {}
        problem = layout_problem(data)
        if problem is not None:
            return self._json({"message": f"Invalid Form Body: {problem}", "code": 50035}, 400)
        message = self._message(CHANNEL_ID, data)
        with self._lock:
            self.interaction_responses.setdefault(token, []).append(
                {"kind": "callback", **body, "message": message}
            )
        return self._json(
            {
                "interaction": {
                    "id": interaction_id,
                    "type": 2,
                    "activity_instance_id": None,
                    "response_message_id": message["id"],
                    "response_message_loading": False,
                    "response_message_ephemeral": bool(data.get("flags", 0) & 64),
                },
                "resource": {"type": body.get("type", 4), "message": message},
            }
        )

    def _webhook(self, method: str, parts: list[str], body: Any) -> web.Response:
        token = parts[2]
        kind = "followup" if method == "POST" else "edit"
        payload = body if isinstance(body, dict) else {}
        with self._lock:
            self.interaction_responses.setdefault(token, []).append({"kind": kind, "data": payload})
        return self._json(self._message(CHANNEL_ID, payload))
