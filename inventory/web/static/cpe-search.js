// The asset form's software helper: search the vendor and product names of the imported
// vulnerability feeds, pick one from the list, type its version, then add
// "cpe:2.3:part:vendor:product:version:*:..." to the software text area.
// A separate file because the Content-Security-Policy forbids inline script.
(function () {
  "use strict";
  var helper = document.getElementById("cpe-helper");
  var list = document.getElementById("software");
  if (!helper || !list) { return; }
  var product = document.getElementById("cpe-product");
  var version = document.getElementById("cpe-version");
  var results = document.getElementById("cpe-results");
  var message = document.getElementById("cpe-message");
  var add = document.getElementById("cpe-add");
  var known = {};
  var timer = null;
  var asked = "";
  helper.hidden = false;

  function escapeValue(text) {
    // CPE 2.3 formatted value: letters, digits, ".", "_" and "-" as they are, the rest escaped.
    text = text.trim().toLowerCase().replace(/\s+/g, "_");
    if (!text) { return "*"; }
    return text.replace(/[^a-z0-9._-]/g, function (ch) { return "\\" + ch; });
  }

  function pick(item) {
    product.value = item.value;
    results.textContent = "";
    message.textContent = item.cpe;
    version.focus();
  }

  function show(items) {
    results.textContent = "";
    items.forEach(function (item) {
      known[item.value] = item;
      var entry = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-ghost btn-small";
      button.textContent = item.value;
      var count = document.createElement("span");
      count.className = "muted small";
      count.textContent = " (" + item.records + " CVE)";
      button.appendChild(count);
      button.addEventListener("click", function () { pick(item); });
      entry.appendChild(button);
      results.appendChild(entry);
    });
    message.textContent = items.length
      ? helper.dataset.found.replace("{n}", String(items.length))
      : helper.dataset.none;
  }

  function search() {
    var text = product.value.trim();
    if (text.length < 2 || text === asked) { return; }
    asked = text;
    var url = helper.dataset.searchUrl + "?q=" + encodeURIComponent(text);
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : []; })
      .then(function (items) { if (text === asked) { show(items); } })
      .catch(function () { /* the text area still works */ });
  }

  product.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });

  add.addEventListener("click", function () {
    var item = known[product.value.trim().toLowerCase()];
    var parts = product.value.trim().toLowerCase().split(":");
    if (!item && parts.length === 2 && parts[0] && parts[1]) {
      item = { part: "a", vendor: parts[0], product: parts[1] };
    }
    if (!item) {
      message.textContent = helper.dataset.pick;
      product.focus();
      return;
    }
    var name = ["cpe", "2.3", item.part, item.vendor, item.product, escapeValue(version.value),
      "*", "*", "*", "*", "*", "*", "*"].join(":");
    var lines = list.value.split("\n").map(function (l) { return l.trim(); }).filter(Boolean);
    if (lines.indexOf(name) === -1) { lines.push(name); }
    list.value = lines.join("\n");
    message.textContent = name;
    product.value = "";
    version.value = "";
    results.textContent = "";
    asked = "";
    product.focus();
  });
}());
