"""Reading the entry's storage files so that no file can keep the entry from loading.

Every store of the integration (sessions, charging targets, hub settings,
reservations, circuit limits) reads its file through `async_load_stored`:

* a file written by a newer version of the integration (a downgrade, or a
  backup of a newer installation) is logged as an error and left untouched:
  the store is made read-only, so nothing written in this run replaces it and
  upgrading again gets its data back; the entry runs on the defaults meanwhile;
* a file of a storage version no release ever wrote (hand-made, or from a
  foreign tool) is logged as an error and ignored; the defaults are used and
  the next change replaces it;
* a file not in Home Assistant's storage format (no version) is logged as an
  error and ignored, and one whose data is not a JSON object as a warning.

What is inside the object (each record) is for the store itself to check: it
keeps every record that reads and drops, with a warning, only a damaged one.
"""

from __future__ import annotations

from typing import Any

from homeassistant.exceptions import UnsupportedStorageVersionError
from homeassistant.helpers.storage import Store

from .const import LOGGER


async def async_load_stored(
    store: Store[dict[str, Any]], what: str
) -> dict[str, Any] | None:
    """The data of `store`'s file, or `None` when there is none it can use.

    `what` names the contents in the log ("charging sessions"). Logs once why
    a file is not used (see the module); never raises for the file's contents.
    """
    try:
        data: object = await store.async_load()
    except UnsupportedStorageVersionError as err:
        store.make_read_only()
        LOGGER.error(
            "The stored %s (%s) were written by a newer version of the Frequenz "
            "Microgrid integration (storage version %s; this version reads up to "
            "%s). They are not used and the file is left as it is: install that "
            "version again to get them back. Until then the %s start from their "
            "defaults and changes to them are not saved",
            what,
            store.path,
            err.found_version,
            err.max_supported_version,
            what,
        )
        return None
    except NotImplementedError:  # no migration from this version
        LOGGER.error(
            "The stored %s (%s) have a storage version no version of the "
            "Frequenz Microgrid integration wrote (this version reads %s): they "
            "are ignored and the %s start from their defaults",
            what,
            store.path,
            store.version,
            what,
        )
        return None
    except KeyError, TypeError:  # no "version" or "data": not a storage file
        LOGGER.error(
            "The stored %s (%s) are not in Home Assistant's storage format: "
            "they are ignored and the %s start from their defaults",
            what,
            store.path,
            what,
        )
        return None
    if data is None or data == {}:
        return None
    if not isinstance(data, dict):
        LOGGER.warning(
            "Ignoring the stored %s (%s): the file holds %s, not an object",
            what,
            store.path,
            type(data).__name__,
        )
        return None
    return data
