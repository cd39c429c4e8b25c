"""Locust scenarios (issue 6, point 3). Imported only by load/locustfile.py, run by Locust in
its own process (Locust monkey-patches with gevent: never import these from the app or tests).
"""
