// Drawing the chart as SVG: axes, lines and legend from numbers scale.js chose. Names from the csv go in
// only as text; colours are CSS classes (.s0 to .s7), since the page's policy allows no inline styles.
import { linear, plotHeightFor, stepAxis, tickText, valueAxis, extent } from './scale.js';

const SVG = 'http://www.w3.org/2000/svg';
// Sizes in CSS pixels: the plot's height follows the width within these bounds; margins around it.
export const CHART = { minWidth: 280, minPlot: 180, maxPlot: 300, top: 36, right: 20, bottom: 52, colours: 8 };

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}
const svgText = (tag, attrs, text) => { const node = svg(tag, attrs); node.textContent = text; return node; };
const label = (attrs, text) => svgText('text', attrs, text);

// Draws lines ({ exp, name, source, colour, points }) of one column into the <svg> chart, `width` CSS pixels wide.
// Drawn in the chart's own CSS pixels (the viewBox is its size on screen), so its text is the size the style
// sheet says at any width; a resize draws it again.
export function draw(chart, { lines, column, xName, width }) {
  const all = lines.flatMap((l) => l.points);
  const plotHeight = plotHeightFor(width, CHART.minPlot, CHART.maxPlot);
  const [x0, x1] = extent(all.map((p) => p[0]));
  const [d0, d1] = extent(all.map((p) => p[1]));
  const y = valueAxis(d0, d1, Math.max(3, Math.round(plotHeight / 55)));

  // Text is measured where it is drawn: the margins and the legend's rows follow from its widths.
  const yLabels = y.ticks.map((v) => label({ class: 'tick y' }, tickText(v, y.step)));
  const legendItems = lines.map((l) => label({}, l.name));
  chart.setAttribute('viewBox', `0 0 ${width} ${plotHeight}`);
  chart.replaceChildren(...yLabels, ...legendItems);
  const textWidth = (t) => t.getComputedTextLength();
  const left = Math.ceil(Math.max(0, ...yLabels.map(textWidth))) + 10;
  const { top, right, bottom } = CHART;
  const plotRight = width - right;
  const x = stepAxis(x0, x1, Math.max(2, Math.round((plotRight - left) / 100)));
  const sx = linear(x0, x1, left, plotRight);
  const sy = linear(y.from, y.to, top + plotHeight, top);

  const axes = svg('g', { class: 'axes' });
  for (const [i, v] of y.ticks.entries()) {
    yLabels[i].setAttribute('x', left - 6);
    yLabels[i].setAttribute('y', sy(v) + 4);
    axes.append(svg('line', { class: 'grid', x1: left, y1: sy(v), x2: plotRight, y2: sy(v) }), yLabels[i]);
  }
  for (const v of x.ticks) {
    axes.append(svg('line', { class: 'grid', x1: sx(v), y1: top, x2: sx(v), y2: top + plotHeight }),
      label({ class: 'tick x', x: sx(v), y: top + plotHeight + 16 }, tickText(v, x.step)));
  }
  axes.append(
    svg('line', { class: 'axis', x1: left, y1: top + plotHeight, x2: plotRight, y2: top + plotHeight }),
    svg('line', { class: 'axis', x1: left, y1: top, x2: left, y2: top + plotHeight }),
    label({ class: 'axis-label x', x: (left + plotRight) / 2, y: top + plotHeight + 34 }, xName),
    label({ class: 'axis-label y', x: 0, y: top - 10 }, column));

  const series = lines.filter((l) => l.points.length)
    .map((l) => svg('polyline', { class: `series ${l.colour}`, 'data-exp': l.exp, points: l.points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ') }));

  // The legend under the plot, its items in rows as wide as the chart.
  const legend = svg('g', { class: 'legend' });
  let at = left, row = 0;
  lines.forEach((l, i) => {
    const item = 28 + textWidth(legendItems[i]);
    if (at > left && at + item > plotRight) { at = left; row++; }
    const ly = top + plotHeight + bottom + row * 20;
    legendItems[i].setAttribute('x', at + 28);
    legendItems[i].setAttribute('y', ly + 4);
    const title = svgText('title', {}, l.points.length ? l.source : `${l.source || 'no metrics.csv'}: no values of ${column}`);
    legend.append(svg('g', { class: 'legend-item' + (l.points.length ? '' : ' missing') }, title,
      svg('line', { class: `series ${l.colour}`, x1: at, y1: ly, x2: at + 20, y2: ly }), legendItems[i]));
    at += item + 20;
  });
  const height = top + plotHeight + bottom + (row + 1) * 20;
  chart.setAttribute('viewBox', `0 0 ${width} ${height}`);
  chart.replaceChildren(axes, ...series, legend);
}
