//! Tracker protocol logic, client and server (HTTP BEP 3/7/23/48, UDP BEP 15), and the searchable index.
