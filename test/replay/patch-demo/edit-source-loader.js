// A webpack loader for the patching demo (test/replay/patching.test.ts): inserts `insert` before
// `anchor` in the module it is given, and `prepend` at its top. A missing anchor fails the build, so
// a change to the workflow that moves the anchor says so instead of building an unchanged bundle.
module.exports = function editSource(source) {
  const { anchor, insert, prepend } = this.getOptions();
  if (!source.includes(anchor)) throw new Error(`patch demo: anchor not found in ${this.resourcePath}: ${anchor}`);
  return `${prepend}\n${source.replace(anchor, `${insert}\n${anchor}`)}`;
};
