"""Geometry helper for the create API (not behind API Gateway): GEOS repairs and CRS checks.

Invoked synchronously by the create function, which must not import numpy/shapely/GDAL itself.
"""

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport.geometry import repair
from geoexport.geometry.planar import GeometryProblem
from geoexport.settings import AwsSettings

settings = AwsSettings.from_environ(os.environ)
logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("op") == "crs":
        return {"problem": repair.check_crs(str(event["code"]))}
    try:
        geometry, how = repair.repair(event["geometry"])
    except GeometryProblem as problem:
        return {"problem": str(problem)}
    return {"geometry": geometry, "how": how}
