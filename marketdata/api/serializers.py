"""The shapes of the market-data answers and of the `market_data` event, declared once: the
views encode their rows from them, the OpenAPI schema documents them, the event carries them."""

from __future__ import annotations

from rest_framework import serializers

from core.shapes import Money, flat_encoder
from marketdata.models import Timeframe


# A symbol's latest price (cached); the answer adds its freshness (QuoteSerializer).
class LatestQuoteSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    price = Money()
    change = Money()
    change_pct = Money()
    volume = serializers.IntegerField()
    timestamp = serializers.DateTimeField()


class QuoteSerializer(LatestQuoteSerializer):
    age_seconds = serializers.FloatField()
    stale = serializers.BooleanField()


class StockDataSerializer(serializers.Serializer):
    stock_data = QuoteSerializer(many=True)


class OhlcvSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField(help_text="Bar start, UTC.")
    open = Money()
    high = Money()
    low = Money()
    close = Money()
    volume = serializers.IntegerField()


# `market_data` events carry a `kind`: "bar" (a stored bar, from the collector), "quote" (the
# live price, from the stream) or "bar_forming" (the bar being formed, from the stream's ticks).
class BarEventSerializer(OhlcvSerializer):
    """The `market_data` event of kind "bar": a symbol's newest stored bar."""

    kind = serializers.ChoiceField(choices=["bar"])
    symbol = serializers.CharField()
    timeframe = serializers.CharField()


class QuoteEventSerializer(serializers.Serializer):
    """The `market_data` event of kind "quote": the live price, at most QUOTE_EVENTS_PER_SECOND
    per symbol (the latest wins)."""

    kind = serializers.ChoiceField(choices=["quote"])
    symbol = serializers.CharField()
    price = Money(help_text="The last trade (or the bid/ask midpoint before any trade).")
    bid = Money(allow_null=True)
    ask = Money(allow_null=True)
    size = serializers.IntegerField(allow_null=True, help_text="The last trade's size.")
    timestamp = serializers.DateTimeField(help_text="The price's time, UTC.")


class FormingBarEventSerializer(OhlcvSerializer):
    """The `market_data` event of kind "bar_forming": the current 5-minute bar so far (from the
    trades the stream has seen since the bar began); the collector stores the final bar."""

    kind = serializers.ChoiceField(choices=["bar_forming"])
    symbol = serializers.CharField()
    timeframe = serializers.CharField()


class FeedAgeFields(serializers.Serializer):
    """How fresh a symbol's data is (marketdata.selectors.feed_staleness)."""

    age_seconds = serializers.IntegerField(
        allow_null=True, help_text="Whole seconds since the provider last answered for it."
    )
    stale = serializers.BooleanField()


class PricePointSerializer(OhlcvSerializer):
    symbol = serializers.CharField()
    price = Money(help_text="The bar's close.")
    timestamp = serializers.DateTimeField(help_text="Bar end, UTC.")


class StockDataSymbolSerializer(FeedAgeFields):
    symbol = serializers.CharField()
    days = serializers.IntegerField(min_value=1)
    stock_data = PricePointSerializer(many=True)


class MarketDataPageSerializer(FeedAgeFields):
    symbol = serializers.CharField()
    timeframe = serializers.ChoiceField(choices=Timeframe.choices)
    count = serializers.IntegerField(min_value=0)
    data = OhlcvSerializer(many=True, help_text="Oldest first.")


class CandleSerializer(serializers.Serializer):
    time = serializers.IntegerField(help_text="Bar start, seconds since the epoch (UTC).")
    timestamp = serializers.DateTimeField(help_text="Bar start, UTC.")
    open = serializers.FloatField()
    high = serializers.FloatField()
    low = serializers.FloatField()
    close = serializers.FloatField()
    volume = serializers.IntegerField()


class ChartDataSerializer(FeedAgeFields):
    symbol = serializers.CharField()
    timeframe = serializers.ChoiceField(choices=Timeframe.choices)
    days = serializers.IntegerField(min_value=1)
    candles = CandleSerializer(many=True)


# The rows, encoded straight from the declarations above (a serializer per row would cost more
# than the query on the cached reads).
latest_quote = flat_encoder(LatestQuoteSerializer, items=True)
ohlcv_row = flat_encoder(OhlcvSerializer, items=True)
price_point = flat_encoder(PricePointSerializer, items=True)
candle = flat_encoder(CandleSerializer, items=True)
bar_event = flat_encoder(BarEventSerializer, items=True)
quote_event = flat_encoder(QuoteEventSerializer, items=True)
forming_bar_event = flat_encoder(FormingBarEventSerializer, items=True)
