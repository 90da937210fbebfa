/* Search from file:// without a network (mkdocs.yml, extra.polyfills).
 *
 * A browser refuses `new Worker("file:///...")`, so Material's offline plugin adds a shim that runs
 * the search worker in a hidden iframe instead -- loaded from unpkg.com, which a site opened
 * without a network cannot reach. This file, ours and shipped with the site, stands in for it: on
 * file:// only, `Worker` runs its script in a same-origin iframe whose `postMessage`,
 * `addEventListener("message")` and `importScripts` (which refuses: English search needs none)
 * stand in for a worker's. Served over http(s), the browser's own Worker is kept.
 */
(function () {
  "use strict";
  if (location.protocol !== "file:") return;

  function IFrameWorker(url) {
    var target = new EventTarget(), queue = [], ready = false;
    var frame = document.createElement("iframe");
    frame.hidden = true;
    document.body.appendChild(frame);
    var w = frame.contentWindow, doc = w.document;

    // the worker's globals: what it posts goes to our listeners
    w.postMessage = function (data) {
      var event = new MessageEvent("message", { data: data });
      target.dispatchEvent(event);
      if (typeof this.onmessage === "function") this.onmessage(event);
    }.bind(this);
    w.importScripts = function () {   // the search imports scripts only for non-English stemmers
      throw new Error("importScripts is not available to a worker run from file://: serve the site " +
                      "(make docs-serve) to search in a language other than English");
    };
    var script = doc.createElement("script");
    script.src = new URL(url, location.href).href;
    script.onload = function () {
      ready = true;
      queue.splice(0).forEach(function (data) { deliver(data); });
    };
    script.onerror = function () {
      var event = new Event("error");
      target.dispatchEvent(event);
    };
    doc.body ? doc.body.appendChild(script) : doc.documentElement.appendChild(script);

    function deliver(data) {
      w.dispatchEvent(new w.MessageEvent("message", { data: data }));
    }
    this.postMessage = function (data) { ready ? deliver(data) : queue.push(data); };
    this.terminate = function () { frame.remove(); };
    this.addEventListener = target.addEventListener.bind(target);
    this.removeEventListener = target.removeEventListener.bind(target);
    this.dispatchEvent = target.dispatchEvent.bind(target);
  }

  window.IFrameWorker = IFrameWorker;
  window.Worker = IFrameWorker;
})();
