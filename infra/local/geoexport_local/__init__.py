"""The local stack: template.yaml brought up on a moto server, with an HTTP gateway in front.

Nothing here lists routes, resources or states by hand: they all come from template.yaml and the ASL file it
references. Lambda invokes (from the API gateway and from moto's ASL interpreter) run the same
``functions/<name>/app.py`` handlers in the stack's main process; moto and the durable state run in a second
process (see ``geoexport_local.__main__``), reached over HTTP as AWS is.
"""
