"""The project's test fleet: `fleet.sh` brings hosts up; `harness` drives it from Python."""
