// The asset form's software helper: search the vendor and product names of the imported
// vulnerability feeds, then add "cpe:2.3:part:vendor:product:version:..." to the software list.
// A separate file because the Content-Security-Policy forbids inline script.
(function () {
  "use strict";
  var helper = document.getElementById("cpe-helper");
  var list = document.getElementById("software");
  if (!helper || !list) { return; }
  var product = document.getElementById("cpe-product");
  var version = document.getElementById("cpe-version");
  var options = document.getElementById("cpe-products");
  var message = document.getElementById("cpe-message");
  var add = document.getElementById("cpe-add");
  var known = {};
  var timer = null;
  helper.hidden = false;

  function escapeValue(text) {
    // CPE 2.3 formatted value: letters, digits, ".", "_" and "-" as they are, the rest escaped.
    text = text.trim().toLowerCase().replace(/\s+/g, "_");
    if (!text) { return "*"; }
    return text.replace(/[^a-z0-9._-]/g, function (ch) { return "\\" + ch; });
  }

  function search() {
    var text = product.value.trim();
    if (text.length < 2) { return; }
    var url = helper.dataset.searchUrl + "?q=" + encodeURIComponent(text);
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : []; })
      .then(function (items) {
        options.textContent = "";
        items.forEach(function (item) {
          known[item.value] = item;
          var option = document.createElement("option");
          option.value = item.value;
          option.label = item.vendor + " " + item.product + " (" + item.records + ")";
          options.appendChild(option);
        });
      })
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
      message.textContent = helper.dataset.pick || "Pick a product from the list (vendor:product).";
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
    product.focus();
  });
}());
