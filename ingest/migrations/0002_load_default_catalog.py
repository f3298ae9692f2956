"""Load the shipped public price catalog."""

from typing import Any

from django.db import migrations


def load_catalog(apps: Any, schema_editor: Any) -> None:
    from ingest import catalog_loader

    catalog_loader.load(catalog_loader.read(), apps.get_model("ingest", "ModelPrice"), apps.get_model("ingest", "PriceRate"))


class Migration(migrations.Migration):
    dependencies = [("ingest", "0001_initial")]
    operations = [migrations.RunPython(load_catalog, migrations.RunPython.noop)]
