// Counts each breach clock down once a second. Without script the page shows the time left
// as of when it was served.
(function () {
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function words(ms) {
    var late = ms < 0, s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    var out = (d > 0 ? d + " d " : "") + pad(h) + " h " + pad(m) + " min " + pad(s % 60) + " s";
    return out + (late ? " late" : " left");
  }
  var clocks = document.querySelectorAll("[data-due]");
  function tick() {
    var now = Date.now();
    for (var i = 0; i < clocks.length; i++) {
      var ms = Date.parse(clocks[i].getAttribute("data-due")) - now;
      clocks[i].textContent = words(ms);
      clocks[i].classList.toggle("late", ms < 0);
    }
  }
  if (clocks.length) { tick(); setInterval(tick, 1000); }
})();
