"""The live half of the `ingest` group: `live_events`, what shoppers did on the site since the last run,
landed from the broker the API publishes to."""

import dagster as dg
import polars as pl

from recs_assets.defs.common import preview
from recs_assets.layout import HomeLayout
from recs_assets.streaming.broker import BrokerUnavailable
from recs_assets.streaming.embedded import live_broker
from recs_assets.streaming.landing import land_available, landed_files, live_raw_events
from resources.home_folder import HomeFolder


def build_live_events(broker_url: str | None) -> dg.AssetsDefinition:
    """The live_events asset, landing from the broker at `broker_url` (None: the home's embedded one)."""

    @dg.asset(name="live_events", group_name="ingest", kinds={"parquet", "duckdb"})
    def live_events(context: dg.AssetExecutionContext, home: HomeFolder) -> dg.Output[pl.DataFrame]:
        """Views, carts and purchases shoppers made on the site, as the API received them, unedited.

        Each run first lands what arrived in the broker since the last one (written to Parquet, then
        acknowledged: nothing is lost if a run dies halfway, and the copy it may leave is dropped in
        staging), then holds every live event landed so far. The `events` asset checks them with the
        same rules as the batch source.
        """
        layout = HomeLayout(home.root)
        metadata: dict[str, dg.RawMetadataValue] = {}
        try:
            with live_broker(broker_url, layout.broker) as broker:
                if broker is None:
                    metadata["broker"] = dg.MetadataValue.text("none configured, and the embedded one holds no events")
                else:
                    report = land_available(broker, layout.live_landing)
                    metadata.update(
                        {
                            "broker": dg.MetadataValue.text(broker.address),
                            "landed_events": dg.MetadataValue.int(report.events),
                            "landed_files": dg.MetadataValue.int(len(report.files)),
                            "consumer_lag": dg.MetadataValue.int(report.status.lag),
                            "pending": dg.MetadataValue.int(report.status.pending),
                            "stream_length": dg.MetadataValue.int(report.status.length),
                        }
                    )
        except BrokerUnavailable as error:
            # What landed before stays usable; what is in the broker waits there for the next run.
            context.log.warning(str(error))
            metadata["broker_unreachable"] = dg.MetadataValue.text(str(error))
        raw = live_raw_events(layout.live_landing)
        if raw.height == 0:
            metadata["note"] = dg.MetadataValue.text(
                "No live events yet: none have been posted to the API through a broker (`make serve`)."
            )
        metadata.update(
            {
                "rows": dg.MetadataValue.int(raw.height),
                "files": dg.MetadataValue.int(len(landed_files(layout.live_landing))),
                "distinct_event_ids": dg.MetadataValue.int(raw["event_id"].n_unique() if raw.height else 0),
                "last_received_at": dg.MetadataValue.text(str(raw["received_at"].max()) if raw.height else "none"),
                "preview": preview(raw.select("event_id", "user_id", "item_id", "event_type", "event_at", "_source")),
            }
        )
        return dg.Output(raw, metadata=metadata)

    return live_events
