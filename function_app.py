"""CA Rotation Watch: the Azure Functions entry point. Thin by design: triggers and wiring
only; the work lives in ``shared.app.handlers`` and the pure core below it."""

import logging

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from shared.app import handlers

# The Functions worker sets the root logger to INFO: the SDKs' per-request logging would
# then cost ~0.1 ms a request and write request headers to the logs.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)

app = func.FunctionApp()


@app.function_name("analyze_upload")
@app.blob_trigger(
    arg_name="client",
    path="%CERT_CONTAINER%/{name}",
    connection="CertStorage",
    source=func.BlobSource.EVENT_GRID,  # the only source Flex Consumption supports
)
def analyze_upload(client: blob.BlobClient) -> None:
    """Analyse one uploaded certificate file and record it (SDK-type binding: only the
    blob's name is taken from it; one ranged GET never reads beyond the size limit)."""
    handlers.analyze_upload(client)


@app.function_name("send_alerts")
@app.timer_trigger(
    arg_name="timer", schedule="%ALERT_SCHEDULE%", run_on_startup=False, use_monitor=True
)
def send_alerts(timer: func.TimerRequest) -> None:
    """Send the deadline alerts that are due, exactly once per stage and channel."""
    handlers.send_alerts(past_due=timer.past_due)
