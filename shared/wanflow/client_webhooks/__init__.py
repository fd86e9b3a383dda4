"""Client webhooks: Standard Webhooks events about a task, sent to the URL the client gave.

(Not the upstream's callbacks to wanflow: those are `wanflow.callbacks`.)

- `targets`: the webhook a client gives with a task (its URL's rules, its events);
- `address_guard`: the check that a URL's addresses are public, and the connection pinned to one;
- `queue`: which events a task has reached, and enqueueing them (first sends and redeliveries);
- `delivery_log`: the record of every attempt beside the task, and its listing;
- `deliverer`: the notify queue's consumer: signs, posts, and retries or gives up.
"""
