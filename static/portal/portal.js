/* Provenant portal: the little the pages do in the browser, as progressive enhancement (every page works without
   it). A static file, so the Content-Security-Policy (script-src 'self') allows it; no framework, no CDN.

   1. A table frame (.table-wrap) whose table is wider than the screen becomes a focusable, labelled region, so a
      keyboard user can scroll it (WCAG 2.1.1; axe's scrollable-region-focusable). Frames that fit stay out of the
      tab order. The label is the table's caption, else the heading before it, else "Table".
   2. A zoom frame ([data-zoom], the lineage picture) gets Fit / Zoom out / Zoom in buttons and drag-to-pan. Without
      this script the picture is fitted to its frame, which is what "Fit" returns to. */
(function () {
  "use strict";

  function precedingHeading(element) {
    for (var node = element; node && node !== document.body; node = node.parentElement) {
      for (var sibling = node.previousElementSibling; sibling; sibling = sibling.previousElementSibling) {
        if (/^H[1-6]$/.test(sibling.tagName)) return sibling;
        var inner = sibling.querySelectorAll("h1, h2, h3, h4, h5, h6");
        if (inner.length) return inner[inner.length - 1];
      }
    }
    return null;
  }

  var labelsGiven = {};

  function regionLabel(wrap) {
    var caption = wrap.querySelector("caption");
    var heading = precedingHeading(wrap);
    var label = (caption && caption.textContent.trim()) || (heading && heading.textContent.trim()) || "Table";
    label = label.replace(/\s+/g, " ");
    // Two regions may not share a name (a screen reader's list of regions could not tell them apart).
    labelsGiven[label] = (labelsGiven[label] || 0) + 1;
    return labelsGiven[label] > 1 ? label + " (" + labelsGiven[label] + ")" : label;
  }

  function markScrollable(wrap) {
    var scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
    if (scrolls && !wrap.hasAttribute("tabindex")) {
      wrap.setAttribute("tabindex", "0");
      wrap.setAttribute("role", "region");
      if (!wrap.hasAttribute("aria-label") && !wrap.hasAttribute("aria-labelledby")) {
        wrap.setAttribute("aria-label", regionLabel(wrap) + " (scrolls sideways)");
      }
      wrap.dataset.scrollRegion = "auto";
    } else if (!scrolls && wrap.dataset.scrollRegion === "auto") {
      ["tabindex", "role", "aria-label", "data-scroll-region"].forEach(function (name) {
        wrap.removeAttribute(name);
      });
    }
  }

  function scrollRegions() {
    var wraps = document.querySelectorAll(".table-wrap");
    wraps.forEach(markScrollable);
    if ("ResizeObserver" in window) {
      var observer = new ResizeObserver(function (entries) {
        entries.forEach(function (entry) { markScrollable(entry.target); });
      });
      wraps.forEach(function (wrap) { observer.observe(wrap); });
    }
  }

  var ZOOM_STEP = 1.25;
  var ZOOM_MAX = 4;

  function zoomFrame(frame) {
    var view = frame.querySelector(".zoom-view");
    var svg = view && view.querySelector("svg");
    var tools = frame.querySelector(".zoom-tools");
    if (!svg || !tools || !svg.viewBox || !svg.viewBox.baseVal || !svg.viewBox.baseVal.width) return;
    var natural = svg.viewBox.baseVal.width;
    var naturalHeight = svg.viewBox.baseVal.height;
    var scale = null; // null: fitted to the frame

    function fittedScale() {
      // Fitted, the drawing is scaled to the tighter of the two sides (preserveAspectRatio "meet").
      var box = svg.getBoundingClientRect();
      return Math.min(box.width / natural, box.height / naturalHeight);
    }

    function centreOn(x, y) {
      view.scrollLeft = x - view.clientWidth / 2;
      view.scrollTop = y - view.clientHeight / 2;
    }

    function currentNodeInView() {
      var node = svg.querySelector(".node.current rect");
      if (!node) return false;
      var box = node.getBoundingClientRect();
      var frameBox = view.getBoundingClientRect();
      return box.right > frameBox.left && box.left < frameBox.right && box.bottom > frameBox.top &&
        box.top < frameBox.bottom;
    }

    function currentNodeCentre() {
      var node = svg.querySelector(".node.current rect");
      if (!node) return null;
      var box = node.getBoundingClientRect();
      var frameBox = view.getBoundingClientRect();
      return {
        x: box.left + box.width / 2 - frameBox.left + view.scrollLeft,
        y: box.top + box.height / 2 - frameBox.top + view.scrollTop,
      };
    }

    function setScale(next) {
      var before = scale || fittedScale();
      var centreX = (view.scrollLeft + view.clientWidth / 2) / before;
      var centreY = (view.scrollTop + view.clientHeight / 2) / before;
      // While this version's node is in view, zooming keeps it centred (as far as the picture's edges allow).
      var followCurrent = currentNodeInView();
      scale = next;
      if (scale === null) {
        view.classList.remove("zoomed");
        svg.style.width = "";
        view.scrollLeft = 0;
        view.scrollTop = 0;
      } else {
        view.classList.add("zoomed");
        svg.style.width = Math.round(natural * scale) + "px";
        var current = followCurrent ? currentNodeCentre() : null;
        if (current) centreOn(current.x, current.y);
        else centreOn(centreX * scale, centreY * scale);
      }
      tools.querySelector("[data-zoom-action=fit]").setAttribute("aria-pressed", String(scale === null));
    }

    tools.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-zoom-action]");
      if (!button) return;
      var action = button.dataset.zoomAction;
      var now = scale || fittedScale();
      if (action === "fit") setScale(null);
      else if (action === "in") setScale(Math.min(now * ZOOM_STEP, ZOOM_MAX));
      else if (action === "out") {
        var smaller = now / ZOOM_STEP;
        setScale(smaller <= fittedScale() ? null : smaller);
      }
    });

    // Drag to pan a zoomed picture; a drag that moved is not also a click on the node it started on.
    var drag = null;
    view.addEventListener("pointerdown", function (event) {
      if (scale === null || event.button !== 0) return;
      drag = { x: event.clientX, y: event.clientY, left: view.scrollLeft, top: view.scrollTop, moved: false };
    });
    view.addEventListener("pointermove", function (event) {
      if (!drag) return;
      var dx = event.clientX - drag.x;
      var dy = event.clientY - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) > 4) {
        drag.moved = true;
        view.classList.add("panning");
        view.setPointerCapture(event.pointerId);
      }
      if (drag.moved) {
        view.scrollLeft = drag.left - dx;
        view.scrollTop = drag.top - dy;
      }
    });
    var justPanned = false;
    view.addEventListener("click", function (click) {
      if (justPanned) { click.preventDefault(); click.stopPropagation(); }
    }, true);
    function endDrag() {
      if (drag && drag.moved) {
        justPanned = true;
        setTimeout(function () { justPanned = false; }, 0);
      }
      drag = null;
      view.classList.remove("panning");
    }
    view.addEventListener("pointerup", endDrag);
    view.addEventListener("pointercancel", endDrag);

    tools.hidden = false;
    setScale(null);
  }

  function start() {
    scrollRegions();
    document.querySelectorAll("[data-zoom]").forEach(zoomFrame);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
