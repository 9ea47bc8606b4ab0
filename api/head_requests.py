"""HEAD on every GET route, answered as GET is but without the body (`curl -I`, load balancer
health checks): FastAPI routes declare GET only, and a HEAD was a 405.

The app sees a GET; uvicorn, which still sees the HEAD, sends the status and headers (the GET's
content-length included) and no body. A streamed answer (a CSV export, the live stream) is
stopped after its first body part instead of being produced whole for nothing.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _HeadAnswered(Exception):
    pass


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        answered = False

        async def send_head(message: Message) -> None:
            nonlocal answered
            if answered:
                raise _HeadAnswered
            if message["type"] == "http.response.body":
                answered = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                if message.get("more_body", False):
                    raise _HeadAnswered
                return
            await send(message)

        # except*: a streamed response sends from inside a task group, which wraps what it raises.
        try:
            await self.app({**scope, "method": "GET"}, receive, send_head)
        except* _HeadAnswered:
            pass
