from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CODE_UNSPECIFIED: _ClassVar[ErrorCode]
    ERROR_CODE_BAD_REQUEST: _ClassVar[ErrorCode]
    ERROR_CODE_UNKNOWN_CHANNEL: _ClassVar[ErrorCode]
    ERROR_CODE_INVALID_CHANNEL: _ClassVar[ErrorCode]
    ERROR_CODE_TOO_MANY_SUBSCRIPTIONS: _ClassVar[ErrorCode]
    ERROR_CODE_RATE_LIMITED: _ClassVar[ErrorCode]
    ERROR_CODE_FORBIDDEN: _ClassVar[ErrorCode]
    ERROR_CODE_UNAUTHORIZED: _ClassVar[ErrorCode]
    ERROR_CODE_RESUME_UNAVAILABLE: _ClassVar[ErrorCode]
    ERROR_CODE_INTERNAL: _ClassVar[ErrorCode]

class Side(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIDE_UNSPECIFIED: _ClassVar[Side]
    SIDE_BUY: _ClassVar[Side]
    SIDE_SELL: _ClassVar[Side]

class SignalAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNAL_ACTION_UNSPECIFIED: _ClassVar[SignalAction]
    SIGNAL_ACTION_STRONG_SELL: _ClassVar[SignalAction]
    SIGNAL_ACTION_SELL: _ClassVar[SignalAction]
    SIGNAL_ACTION_HOLD: _ClassVar[SignalAction]
    SIGNAL_ACTION_BUY: _ClassVar[SignalAction]
    SIGNAL_ACTION_STRONG_BUY: _ClassVar[SignalAction]

class Mood(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MOOD_UNSPECIFIED: _ClassVar[Mood]
    MOOD_BEARISH: _ClassVar[Mood]
    MOOD_NEUTRAL: _ClassVar[Mood]
    MOOD_BULLISH: _ClassVar[Mood]
ERROR_CODE_UNSPECIFIED: ErrorCode
ERROR_CODE_BAD_REQUEST: ErrorCode
ERROR_CODE_UNKNOWN_CHANNEL: ErrorCode
ERROR_CODE_INVALID_CHANNEL: ErrorCode
ERROR_CODE_TOO_MANY_SUBSCRIPTIONS: ErrorCode
ERROR_CODE_RATE_LIMITED: ErrorCode
ERROR_CODE_FORBIDDEN: ErrorCode
ERROR_CODE_UNAUTHORIZED: ErrorCode
ERROR_CODE_RESUME_UNAVAILABLE: ErrorCode
ERROR_CODE_INTERNAL: ErrorCode
SIDE_UNSPECIFIED: Side
SIDE_BUY: Side
SIDE_SELL: Side
SIGNAL_ACTION_UNSPECIFIED: SignalAction
SIGNAL_ACTION_STRONG_SELL: SignalAction
SIGNAL_ACTION_SELL: SignalAction
SIGNAL_ACTION_HOLD: SignalAction
SIGNAL_ACTION_BUY: SignalAction
SIGNAL_ACTION_STRONG_BUY: SignalAction
MOOD_UNSPECIFIED: Mood
MOOD_BEARISH: Mood
MOOD_NEUTRAL: Mood
MOOD_BULLISH: Mood

class ServerMessage(_message.Message):
    __slots__ = ("welcome", "subscribed", "unsubscribed", "event", "pong", "error", "lagged", "channel_list", "conflated")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PONG_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LAGGED_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_LIST_FIELD_NUMBER: _ClassVar[int]
    CONFLATED_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    subscribed: Subscribed
    unsubscribed: Unsubscribed
    event: Event
    pong: Pong
    error: Error
    lagged: Lagged
    channel_list: ChannelList
    conflated: Conflated
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., subscribed: _Optional[_Union[Subscribed, _Mapping]] = ..., unsubscribed: _Optional[_Union[Unsubscribed, _Mapping]] = ..., event: _Optional[_Union[Event, _Mapping]] = ..., pong: _Optional[_Union[Pong, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., lagged: _Optional[_Union[Lagged, _Mapping]] = ..., channel_list: _Optional[_Union[ChannelList, _Mapping]] = ..., conflated: _Optional[_Union[Conflated, _Mapping]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("session_id", "server_version", "protocol", "format", "heartbeat_interval_ms", "max_subscriptions", "max_requests_per_second", "epoch", "gzip_threshold_bytes", "max_inbound_frame_bytes", "max_names_per_request")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    GZIP_THRESHOLD_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_INBOUND_FRAME_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_NAMES_PER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    server_version: str
    protocol: str
    format: str
    heartbeat_interval_ms: int
    max_subscriptions: int
    max_requests_per_second: int
    epoch: str
    gzip_threshold_bytes: int
    max_inbound_frame_bytes: int
    max_names_per_request: int
    def __init__(self, session_id: _Optional[str] = ..., server_version: _Optional[str] = ..., protocol: _Optional[str] = ..., format: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ..., max_subscriptions: _Optional[int] = ..., max_requests_per_second: _Optional[int] = ..., epoch: _Optional[str] = ..., gzip_threshold_bytes: _Optional[int] = ..., max_inbound_frame_bytes: _Optional[int] = ..., max_names_per_request: _Optional[int] = ...) -> None: ...

class Subscribed(_message.Message):
    __slots__ = ("request_id", "channels")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    channels: _containers.RepeatedCompositeFieldContainer[ChannelState]
    def __init__(self, request_id: _Optional[int] = ..., channels: _Optional[_Iterable[_Union[ChannelState, _Mapping]]] = ...) -> None: ...

class ChannelState(_message.Message):
    __slots__ = ("channel", "seq", "epoch", "recovered")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    RECOVERED_FIELD_NUMBER: _ClassVar[int]
    channel: str
    seq: int
    epoch: str
    recovered: bool
    def __init__(self, channel: _Optional[str] = ..., seq: _Optional[int] = ..., epoch: _Optional[str] = ..., recovered: _Optional[bool] = ...) -> None: ...

class Unsubscribed(_message.Message):
    __slots__ = ("request_id", "channels")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    channels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request_id: _Optional[int] = ..., channels: _Optional[_Iterable[str]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("channel", "seq", "source_time_ns", "publish_time_ns", "trade", "ticker", "book_snapshot", "book_update", "candle", "signal", "sentiment", "scan_started", "scan_result", "symbol_analyzed", "scan_progress", "scan_done", "scan_error", "custom")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    TRADE_FIELD_NUMBER: _ClassVar[int]
    TICKER_FIELD_NUMBER: _ClassVar[int]
    BOOK_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    BOOK_UPDATE_FIELD_NUMBER: _ClassVar[int]
    CANDLE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_FIELD_NUMBER: _ClassVar[int]
    SCAN_STARTED_FIELD_NUMBER: _ClassVar[int]
    SCAN_RESULT_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_ANALYZED_FIELD_NUMBER: _ClassVar[int]
    SCAN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SCAN_DONE_FIELD_NUMBER: _ClassVar[int]
    SCAN_ERROR_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    channel: str
    seq: int
    source_time_ns: int
    publish_time_ns: int
    trade: Trade
    ticker: Ticker
    book_snapshot: BookSnapshot
    book_update: BookUpdate
    candle: Candle
    signal: Signal
    sentiment: Sentiment
    scan_started: ScanStarted
    scan_result: ScanResult
    symbol_analyzed: SymbolAnalyzed
    scan_progress: ScanProgress
    scan_done: ScanDone
    scan_error: ScanError
    custom: Custom
    def __init__(self, channel: _Optional[str] = ..., seq: _Optional[int] = ..., source_time_ns: _Optional[int] = ..., publish_time_ns: _Optional[int] = ..., trade: _Optional[_Union[Trade, _Mapping]] = ..., ticker: _Optional[_Union[Ticker, _Mapping]] = ..., book_snapshot: _Optional[_Union[BookSnapshot, _Mapping]] = ..., book_update: _Optional[_Union[BookUpdate, _Mapping]] = ..., candle: _Optional[_Union[Candle, _Mapping]] = ..., signal: _Optional[_Union[Signal, _Mapping]] = ..., sentiment: _Optional[_Union[Sentiment, _Mapping]] = ..., scan_started: _Optional[_Union[ScanStarted, _Mapping]] = ..., scan_result: _Optional[_Union[ScanResult, _Mapping]] = ..., symbol_analyzed: _Optional[_Union[SymbolAnalyzed, _Mapping]] = ..., scan_progress: _Optional[_Union[ScanProgress, _Mapping]] = ..., scan_done: _Optional[_Union[ScanDone, _Mapping]] = ..., scan_error: _Optional[_Union[ScanError, _Mapping]] = ..., custom: _Optional[_Union[Custom, _Mapping]] = ...) -> None: ...

class Pong(_message.Message):
    __slots__ = ("request_id", "server_time_ns")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    server_time_ns: int
    def __init__(self, request_id: _Optional[int] = ..., server_time_ns: _Optional[int] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("request_id", "code", "message", "channel", "channels")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    code: ErrorCode
    message: str
    channel: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request_id: _Optional[int] = ..., code: _Optional[_Union[ErrorCode, str]] = ..., message: _Optional[str] = ..., channel: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ...) -> None: ...

class Lagged(_message.Message):
    __slots__ = ("channel", "first_seq", "last_seq")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    channel: str
    first_seq: int
    last_seq: int
    def __init__(self, channel: _Optional[str] = ..., first_seq: _Optional[int] = ..., last_seq: _Optional[int] = ...) -> None: ...

class Conflated(_message.Message):
    __slots__ = ("channel", "first_seq", "last_seq")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    channel: str
    first_seq: int
    last_seq: int
    def __init__(self, channel: _Optional[str] = ..., first_seq: _Optional[int] = ..., last_seq: _Optional[int] = ...) -> None: ...

class ChannelList(_message.Message):
    __slots__ = ("request_id", "channels")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    channels: _containers.RepeatedCompositeFieldContainer[ChannelInfo]
    def __init__(self, request_id: _Optional[int] = ..., channels: _Optional[_Iterable[_Union[ChannelInfo, _Mapping]]] = ...) -> None: ...

class ChannelInfo(_message.Message):
    __slots__ = ("channel", "kind", "seq")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    channel: str
    kind: str
    seq: int
    def __init__(self, channel: _Optional[str] = ..., kind: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class ClientMessage(_message.Message):
    __slots__ = ("subscribe", "unsubscribe", "ping", "auth", "list_channels", "request_scan")
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    LIST_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_SCAN_FIELD_NUMBER: _ClassVar[int]
    subscribe: Subscribe
    unsubscribe: Unsubscribe
    ping: Ping
    auth: Auth
    list_channels: ListChannels
    request_scan: RequestScan
    def __init__(self, subscribe: _Optional[_Union[Subscribe, _Mapping]] = ..., unsubscribe: _Optional[_Union[Unsubscribe, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., auth: _Optional[_Union[Auth, _Mapping]] = ..., list_channels: _Optional[_Union[ListChannels, _Mapping]] = ..., request_scan: _Optional[_Union[RequestScan, _Mapping]] = ...) -> None: ...

class Subscribe(_message.Message):
    __slots__ = ("request_id", "channels", "resume", "snapshot", "conflate_ms")
    class ResumeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ResumePosition
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ResumePosition, _Mapping]] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    CONFLATE_MS_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    channels: _containers.RepeatedScalarFieldContainer[str]
    resume: _containers.MessageMap[str, ResumePosition]
    snapshot: bool
    conflate_ms: int
    def __init__(self, request_id: _Optional[int] = ..., channels: _Optional[_Iterable[str]] = ..., resume: _Optional[_Mapping[str, ResumePosition]] = ..., snapshot: _Optional[bool] = ..., conflate_ms: _Optional[int] = ...) -> None: ...

class ResumePosition(_message.Message):
    __slots__ = ("seq", "epoch")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    seq: int
    epoch: str
    def __init__(self, seq: _Optional[int] = ..., epoch: _Optional[str] = ...) -> None: ...

class Unsubscribe(_message.Message):
    __slots__ = ("request_id", "channels")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    channels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request_id: _Optional[int] = ..., channels: _Optional[_Iterable[str]] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    def __init__(self, request_id: _Optional[int] = ...) -> None: ...

class Auth(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class ListChannels(_message.Message):
    __slots__ = ("request_id", "pattern")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    pattern: str
    def __init__(self, request_id: _Optional[int] = ..., pattern: _Optional[str] = ...) -> None: ...

class RequestScan(_message.Message):
    __slots__ = ("request_id", "top_n", "venue")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TOP_N_FIELD_NUMBER: _ClassVar[int]
    VENUE_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    top_n: int
    venue: str
    def __init__(self, request_id: _Optional[int] = ..., top_n: _Optional[int] = ..., venue: _Optional[str] = ...) -> None: ...

class Trade(_message.Message):
    __slots__ = ("price", "quantity", "side", "trade_id", "count")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    price: float
    quantity: float
    side: Side
    trade_id: str
    count: int
    def __init__(self, price: _Optional[float] = ..., quantity: _Optional[float] = ..., side: _Optional[_Union[Side, str]] = ..., trade_id: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class Ticker(_message.Message):
    __slots__ = ("last", "bid", "bid_size", "ask", "ask_size", "open_24h", "high_24h", "low_24h", "change_pct_24h", "volume_24h", "quote_volume_24h")
    LAST_FIELD_NUMBER: _ClassVar[int]
    BID_FIELD_NUMBER: _ClassVar[int]
    BID_SIZE_FIELD_NUMBER: _ClassVar[int]
    ASK_FIELD_NUMBER: _ClassVar[int]
    ASK_SIZE_FIELD_NUMBER: _ClassVar[int]
    OPEN_24H_FIELD_NUMBER: _ClassVar[int]
    HIGH_24H_FIELD_NUMBER: _ClassVar[int]
    LOW_24H_FIELD_NUMBER: _ClassVar[int]
    CHANGE_PCT_24H_FIELD_NUMBER: _ClassVar[int]
    VOLUME_24H_FIELD_NUMBER: _ClassVar[int]
    QUOTE_VOLUME_24H_FIELD_NUMBER: _ClassVar[int]
    last: float
    bid: float
    bid_size: float
    ask: float
    ask_size: float
    open_24h: float
    high_24h: float
    low_24h: float
    change_pct_24h: float
    volume_24h: float
    quote_volume_24h: float
    def __init__(self, last: _Optional[float] = ..., bid: _Optional[float] = ..., bid_size: _Optional[float] = ..., ask: _Optional[float] = ..., ask_size: _Optional[float] = ..., open_24h: _Optional[float] = ..., high_24h: _Optional[float] = ..., low_24h: _Optional[float] = ..., change_pct_24h: _Optional[float] = ..., volume_24h: _Optional[float] = ..., quote_volume_24h: _Optional[float] = ...) -> None: ...

class Level(_message.Message):
    __slots__ = ("price", "quantity")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    price: float
    quantity: float
    def __init__(self, price: _Optional[float] = ..., quantity: _Optional[float] = ...) -> None: ...

class BookSnapshot(_message.Message):
    __slots__ = ("bids", "asks", "checksum", "price_decimals", "size_decimals")
    BIDS_FIELD_NUMBER: _ClassVar[int]
    ASKS_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    PRICE_DECIMALS_FIELD_NUMBER: _ClassVar[int]
    SIZE_DECIMALS_FIELD_NUMBER: _ClassVar[int]
    bids: _containers.RepeatedCompositeFieldContainer[Level]
    asks: _containers.RepeatedCompositeFieldContainer[Level]
    checksum: int
    price_decimals: int
    size_decimals: int
    def __init__(self, bids: _Optional[_Iterable[_Union[Level, _Mapping]]] = ..., asks: _Optional[_Iterable[_Union[Level, _Mapping]]] = ..., checksum: _Optional[int] = ..., price_decimals: _Optional[int] = ..., size_decimals: _Optional[int] = ...) -> None: ...

class BookUpdate(_message.Message):
    __slots__ = ("bids", "asks", "checksum")
    BIDS_FIELD_NUMBER: _ClassVar[int]
    ASKS_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    bids: _containers.RepeatedCompositeFieldContainer[Level]
    asks: _containers.RepeatedCompositeFieldContainer[Level]
    checksum: int
    def __init__(self, bids: _Optional[_Iterable[_Union[Level, _Mapping]]] = ..., asks: _Optional[_Iterable[_Union[Level, _Mapping]]] = ..., checksum: _Optional[int] = ...) -> None: ...

class Candle(_message.Message):
    __slots__ = ("interval", "open_time_ns", "open", "high", "low", "close", "volume", "closed", "trades")
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    OPEN_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    interval: str
    open_time_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    closed: bool
    trades: int
    def __init__(self, interval: _Optional[str] = ..., open_time_ns: _Optional[int] = ..., open: _Optional[float] = ..., high: _Optional[float] = ..., low: _Optional[float] = ..., close: _Optional[float] = ..., volume: _Optional[float] = ..., closed: _Optional[bool] = ..., trades: _Optional[int] = ...) -> None: ...

class Custom(_message.Message):
    __slots__ = ("data", "json")
    DATA_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    json: str
    def __init__(self, data: _Optional[bytes] = ..., json: _Optional[str] = ...) -> None: ...

class Signal(_message.Message):
    __slots__ = ("action", "strength", "reason", "interval", "indicators")
    class IndicatorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ACTION_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    INDICATORS_FIELD_NUMBER: _ClassVar[int]
    action: SignalAction
    strength: float
    reason: str
    interval: str
    indicators: _containers.ScalarMap[str, float]
    def __init__(self, action: _Optional[_Union[SignalAction, str]] = ..., strength: _Optional[float] = ..., reason: _Optional[str] = ..., interval: _Optional[str] = ..., indicators: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Sentiment(_message.Message):
    __slots__ = ("fear_greed", "mood", "confidence", "advancing", "declining", "unchanged")
    FEAR_GREED_FIELD_NUMBER: _ClassVar[int]
    MOOD_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    ADVANCING_FIELD_NUMBER: _ClassVar[int]
    DECLINING_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    fear_greed: float
    mood: Mood
    confidence: float
    advancing: int
    declining: int
    unchanged: int
    def __init__(self, fear_greed: _Optional[float] = ..., mood: _Optional[_Union[Mood, str]] = ..., confidence: _Optional[float] = ..., advancing: _Optional[int] = ..., declining: _Optional[int] = ..., unchanged: _Optional[int] = ...) -> None: ...

class ScanStarted(_message.Message):
    __slots__ = ("request_id", "scan_id", "total")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    PASS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    scan_id: str
    total: int
    def __init__(self, request_id: _Optional[int] = ..., scan_id: _Optional[str] = ..., total: _Optional[int] = ..., **kwargs) -> None: ...

class SymbolAnalyzed(_message.Message):
    __slots__ = ("scan_id", "instrument", "score")
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    PASS_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    instrument: str
    score: float
    def __init__(self, scan_id: _Optional[str] = ..., instrument: _Optional[str] = ..., score: _Optional[float] = ..., **kwargs) -> None: ...

class ScanProgress(_message.Message):
    __slots__ = ("scan_id", "processed", "remaining")
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    PASS_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    processed: int
    remaining: int
    def __init__(self, scan_id: _Optional[str] = ..., processed: _Optional[int] = ..., remaining: _Optional[int] = ..., **kwargs) -> None: ...

class ScanResult(_message.Message):
    __slots__ = ("scan_id", "entries")
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    PASS_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    entries: _containers.RepeatedCompositeFieldContainer[ScanEntry]
    def __init__(self, scan_id: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[ScanEntry, _Mapping]]] = ..., **kwargs) -> None: ...

class ScanEntry(_message.Message):
    __slots__ = ("instrument", "score", "reason")
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    score: float
    reason: str
    def __init__(self, instrument: _Optional[str] = ..., score: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class ScanDone(_message.Message):
    __slots__ = ("request_id", "scan_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    scan_id: str
    def __init__(self, request_id: _Optional[int] = ..., scan_id: _Optional[str] = ...) -> None: ...

class ScanError(_message.Message):
    __slots__ = ("request_id", "scan_id", "message")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    scan_id: str
    message: str
    def __init__(self, request_id: _Optional[int] = ..., scan_id: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...
