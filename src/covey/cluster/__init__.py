"""Cluster membership: a private CA, pairing by one-time invite, mutual TLS on every gRPC link.

``store`` keeps the files, ``pki`` makes certificates, ``invite`` encodes codes, ``enrol`` runs the
pairing exchange, ``tls`` secures a node's server, ``access`` the orchestrator's clients, ``cli`` the
``covey cluster`` commands.
"""
