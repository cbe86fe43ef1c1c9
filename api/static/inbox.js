/*
 * notify inbox widget: a bell with the unread count, the feed, mark as read, mark all, delete.
 * One file, no build step, no dependencies. Embed:
 *
 *   <script src="https://notify.example.com/inbox/inbox.js"></script>
 *   <div id="inbox"></div>
 *   <script>
 *     NotifyInbox.mount(document.getElementById("inbox"), {
 *       // {sessionToken, apiUrl, wsUrl} from get-inbox-session (called by your backend),
 *       // or a function returning a promise of it: called again when the session expires.
 *       session: () => fetch("/my-backend/inbox-session").then((r) => r.json()),
 *     });
 *   </script>
 *
 * Options: feedIds (array), pageSize (1-100, default 20), open (start with the panel open),
 * onMessageClick(message), heartbeatTimeoutMs (default 60000). The protocol: docs/inbox.md.
 */
(function () {
  "use strict";

  var CLOSE_UNAUTHORIZED = 4401;
  var RPC = "/api/v1/notifications/";

  var STYLE = [
    ":host{all:initial;font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328}",
    ".ni{position:relative;display:inline-block}",
    ".bell{position:relative;border:1px solid #d0d7de;background:#fff;border-radius:8px;",
    "padding:6px 8px;cursor:pointer;color:#1f2328;line-height:0}",
    ".badge{position:absolute;top:-6px;right:-8px;min-width:18px;padding:1px 5px;border-radius:9px;",
    "background:#cf222e;color:#fff;font-size:12px;font-weight:600;text-align:center}",
    ".badge[hidden]{display:none}",
    ".panel{position:absolute;z-index:1000;top:calc(100% + 6px);left:0;width:360px;",
    "max-height:480px;overflow:auto;background:#fff;border:1px solid #d0d7de;border-radius:10px;",
    "box-shadow:0 8px 24px rgba(140,149,159,.2)}",
    ".panel[hidden]{display:none}",
    ".head{display:flex;align-items:center;justify-content:space-between;padding:10px 12px;",
    "border-bottom:1px solid #eaeef2;font-weight:600}",
    ".head button,.more{border:0;background:none;color:#0969da;cursor:pointer;font:inherit}",
    ".list{list-style:none;margin:0;padding:0}",
    ".item{position:relative;padding:10px 32px 10px 14px;border-bottom:1px solid #eaeef2;",
    "cursor:pointer}",
    ".item.unread{background:#ddf4ff}",
    ".item.unread::before{content:'';position:absolute;left:5px;top:16px;width:6px;height:6px;",
    "border-radius:3px;background:#0969da}",
    ".title{font-weight:600}",
    ".body{color:#424a53;word-wrap:break-word}",
    ".time{color:#6e7781;font-size:12px}",
    ".delete{position:absolute;right:8px;top:8px;border:0;background:none;color:#6e7781;",
    "cursor:pointer;font-size:16px}",
    ".empty,.state{padding:14px;color:#6e7781;text-align:center}",
    ".state{padding:4px;font-size:11px}",
    ".more{display:block;width:100%;padding:8px}",
    ".more[hidden],.empty[hidden]{display:none}",
  ].join("");

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text; // never innerHTML: content is the sender's
    return node;
  }

  function bellIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "20");
    svg.setAttribute("height", "20");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute(
      "d",
      "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3.5" +
        "a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z",
    );
    svg.appendChild(path);
    return svg;
  }

  function ago(iso) {
    var s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (s < 45) return "just now";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return new Date(iso).toLocaleDateString();
  }

  function Inbox(root, options) {
    this.options = options || {};
    this.pageSize = Math.min(100, Math.max(1, this.options.pageSize || 20));
    this.feedIds = this.options.feedIds || null;
    this.messages = []; // newest first
    this.counts = { unseenCount: 0, unreadCount: 0 };
    this.seq = null; // the last event seq received: a reconnect resumes after it
    this.pages = 1;
    this.hasMore = false;
    this.socket = null;
    this.retryMs = 500;
    this.stopped = false;
    this.lastFrameAt = 0;
    this.connected = false;
    this.reloading = 0;
    this.replay = [];
    this._build(root);
  }

  Inbox.prototype._build = function (root) {
    var shadow = root.attachShadow ? root.attachShadow({ mode: "open" }) : root;
    var style = el("style");
    style.textContent = STYLE;
    shadow.appendChild(style);
    var box = el("div", "ni");
    this.bell = el("button", "bell");
    this.bell.appendChild(bellIcon());
    this.bell.setAttribute("aria-label", "Notifications");
    this.bell.setAttribute("part", "bell");
    this.badge = el("span", "badge");
    this.badge.setAttribute("data-role", "unread-count");
    this.badge.hidden = true;
    this.bell.appendChild(this.badge);
    this.panel = el("div", "panel");
    this.panel.hidden = !this.options.open;
    var head = el("div", "head");
    head.appendChild(el("span", "", this.options.title || "Notifications"));
    this.markAll = el("button", "mark-all", "Mark all as read");
    head.appendChild(this.markAll);
    this.list = el("ul", "list");
    this.empty = el("div", "empty", "No notifications");
    this.more = el("button", "more", "Load more");
    this.more.hidden = true;
    this.state = el("div", "state", "connecting\u2026");
    this.panel.appendChild(head);
    this.panel.appendChild(this.list);
    this.panel.appendChild(this.empty);
    this.panel.appendChild(this.more);
    this.panel.appendChild(this.state);
    box.appendChild(this.bell);
    box.appendChild(this.panel);
    shadow.appendChild(box);

    var self = this;
    this.bell.addEventListener("click", function () {
      self.panel.hidden = !self.panel.hidden;
      if (!self.panel.hidden && self.counts.unseenCount > 0) self._markAll("SEEN");
    });
    this.markAll.addEventListener("click", function () {
      self._markAll("READ");
    });
    this.more.addEventListener("click", function () {
      self.pages += 1;
      self._loadPage(self.pages);
    });
  };

  Inbox.prototype.start = function () {
    var self = this;
    return this._session(false).then(function () {
      self._connect();
      self._watchdog = setInterval(function () {
        var limit = self.options.heartbeatTimeoutMs || 60000;
        if (self.socket && self.connected && Date.now() - self.lastFrameAt > limit) {
          self.socket.close(); // silent too long: a dead connection; reconnect
        }
      }, 5000);
    });
  };

  Inbox.prototype.destroy = function () {
    this.stopped = true;
    clearInterval(this._watchdog);
    if (this.socket) this.socket.close(1000, "bye");
  };

  Inbox.prototype._session = function (renew) {
    var self = this;
    var source = this.options.session;
    if (renew && typeof source !== "function") {
      return Promise.reject(new Error("session expired"));
    }
    var got = typeof source === "function" ? source() : source;
    return Promise.resolve(got).then(function (s) {
      if (!s || !s.sessionToken) throw new Error("no session");
      self.session = s;
    });
  };

  Inbox.prototype._rpc = function (name, body) {
    var s = this.session;
    return fetch(s.apiUrl.replace(/\/$/, "") + RPC + name, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + s.sessionToken },
      body: JSON.stringify(body || {}),
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) throw new Error(name + ": HTTP " + r.status + " " + JSON.stringify(data));
        return data;
      });
    });
  };

  Inbox.prototype._connect = function () {
    if (this.stopped) return;
    var self = this;
    var url = this.session.wsUrl + "?token=" + encodeURIComponent(this.session.sessionToken);
    if (this.seq !== null) url += "&after=" + this.seq;
    var ws = new WebSocket(url);
    this.socket = ws;
    this._setState("connecting\u2026");
    ws.onopen = function () {
      self.connected = true;
      self.lastFrameAt = Date.now();
    };
    ws.onmessage = function (e) {
      self.lastFrameAt = Date.now();
      self._onFrame(JSON.parse(e.data));
    };
    ws.onclose = function (e) {
      self.connected = false;
      if (self.socket !== ws || self.stopped) return;
      self._setState("reconnecting\u2026");
      var wait = self.retryMs;
      self.retryMs = Math.min(15000, self.retryMs * 2);
      var next = function () {
        self._connect();
      };
      if (e.code === CLOSE_UNAUTHORIZED) {
        next = function () {
          self._session(true).then(
            function () {
              self._connect();
            },
            function () {
              self._setState("session expired");
            },
          );
        };
      }
      setTimeout(next, wait * (0.5 + Math.random() / 2));
    };
  };

  Inbox.prototype._onFrame = function (f) {
    var first = this.seq === null;
    if (typeof f.seq === "number") this.seq = f.seq;
    // A feed read in flight may predate this frame: apply it again once the read is in.
    if (this.reloading && f.type.indexOf("message.") === 0) this.replay.push(f);
    this._apply(f, first);
    this._render();
  };

  Inbox.prototype._apply = function (f, first) {
    switch (f.type) {
      case "message.created":
        this._upsert(f.message, true);
        break;
      case "message.updated":
        if (f.bulk) this._reload();
        else this._upsert(f.message, false);
        break;
      case "message.deleted":
        this._remove(f.messageId);
        break;
      case "counts":
        this.counts = { unseenCount: f.unseenCount, unreadCount: f.unreadCount };
        this.retryMs = 500;
        this._setState("live");
        if (first) this._reload(); // connected: the feed as of now; later changes arrive live
        break;
      case "reset":
        this._reload();
        break;
      default: // ping
        break;
    }
  };

  Inbox.prototype._wanted = function (m) {
    return !this.feedIds || this.feedIds.indexOf(m.feedId) >= 0;
  };

  Inbox.prototype._upsert = function (m, created) {
    if (!this._wanted(m)) return;
    for (var i = 0; i < this.messages.length; i++) {
      if (this.messages[i].messageId === m.messageId) {
        this.messages[i] = m;
        return;
      }
    }
    if (!created) return; // an item not loaded (an older page): nothing to show
    var at = 0;
    while (at < this.messages.length && this.messages[at].createdAt > m.createdAt) at++;
    this.messages.splice(at, 0, m);
  };

  Inbox.prototype._remove = function (id) {
    this.messages = this.messages.filter(function (m) {
      return m.messageId !== id;
    });
  };

  Inbox.prototype._reload = function () {
    var self = this;
    var size = Math.min(100, Math.max(this.pageSize, this.messages.length));
    var body = { page: 1, pageSize: size };
    if (this.feedIds) body.feedIds = this.feedIds;
    this.reloading += 1;
    var done = function () {
      self.reloading -= 1;
      if (!self.reloading) self.replay = [];
    };
    return this._rpc("get-inbox-feed", body).then(function (data) {
      self.messages = data.messages;
      self.hasMore = data.hasMore;
      self.pages = Math.ceil(size / self.pageSize);
      self.replay.forEach(function (f) {
        if (!f.bulk) self._apply(f, false);
      });
      done();
      self._render();
    }, done);
  };

  Inbox.prototype._loadPage = function (page) {
    var self = this;
    var body = { page: page, pageSize: this.pageSize };
    if (this.feedIds) body.feedIds = this.feedIds;
    return this._rpc("get-inbox-feed", body).then(function (data) {
      data.messages.forEach(function (m) {
        var known = self.messages.some(function (x) {
          return x.messageId === m.messageId;
        });
        if (!known) self.messages.push(m);
      });
      self.hasMore = data.hasMore;
      self._render();
    });
  };

  Inbox.prototype._markAll = function (status) {
    var self = this;
    this.messages.forEach(function (m) {
      if (status === "READ") m.status = "READ";
      else if (m.status === "UNSEEN") m.status = "SEEN";
    });
    if (status === "READ") this.counts.unreadCount = 0;
    this.counts.unseenCount = 0;
    this._render();
    var body = { status: status };
    if (this.feedIds) body.feedIds = this.feedIds;
    return this._rpc("mark-all-inbox-messages", body).catch(function (e) {
      self._setState(String(e));
    });
  };

  Inbox.prototype._open = function (m) {
    var self = this;
    if (m.status !== "READ") {
      if (m.status === "UNSEEN") this.counts.unseenCount = Math.max(0, this.counts.unseenCount - 1);
      this.counts.unreadCount = Math.max(0, this.counts.unreadCount - 1);
      m.status = "READ";
      this._render();
      this._rpc("mark-inbox-message", { messageId: m.messageId, status: "READ" }).catch(
        function (e) {
          self._setState(String(e));
        },
      );
    }
    if (this.options.onMessageClick) this.options.onMessageClick(m);
  };

  Inbox.prototype._delete = function (m) {
    var self = this;
    if (m.status !== "READ") {
      this.counts.unreadCount = Math.max(0, this.counts.unreadCount - 1);
      if (m.status === "UNSEEN") this.counts.unseenCount = Math.max(0, this.counts.unseenCount - 1);
    }
    this._remove(m.messageId);
    this._render();
    this._rpc("delete-inbox-message", { messageId: m.messageId }).catch(function (e) {
      self._setState(String(e));
    });
  };

  Inbox.prototype._setState = function (text) {
    this.state.textContent = text;
  };

  Inbox.prototype._render = function () {
    var self = this;
    var unread = this.counts.unreadCount;
    this.badge.hidden = !unread;
    this.badge.textContent = unread > 99 ? "99+" : String(unread);
    this.list.textContent = "";
    this.messages.forEach(function (m) {
      var li = el("li", "item" + (m.status === "READ" ? "" : " unread"));
      li.setAttribute("data-message-id", m.messageId);
      li.setAttribute("data-status", m.status);
      if (m.title) li.appendChild(el("div", "title", m.title));
      li.appendChild(el("div", "body", m.body));
      li.appendChild(el("div", "time", ago(m.createdAt)));
      var del = el("button", "delete", "\u00D7");
      del.setAttribute("aria-label", "Delete");
      del.addEventListener("click", function (e) {
        e.stopPropagation();
        self._delete(m);
      });
      li.appendChild(del);
      li.addEventListener("click", function () {
        self._open(m);
      });
      self.list.appendChild(li);
    });
    this.empty.hidden = this.messages.length > 0;
    this.more.hidden = !this.hasMore;
  };

  window.NotifyInbox = {
    /** Mount the inbox in `element`; returns it (`.destroy()` closes its socket). */
    mount: function (element, options) {
      var inbox = new Inbox(element, options);
      inbox.start().catch(function (e) {
        inbox._setState(String(e));
      });
      return inbox;
    },
  };
})();
