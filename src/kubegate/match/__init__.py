"""Match inventoried packages against OSV advisories (DESIGN.md "Matching rules").

``kubegate.match.versions`` holds one version comparator per ecosystem scheme; the rest of this
package evaluates OSV ``affected[]`` entries and groups matched records into findings.
"""
